/* The few library routines a freestanding guest needs (gcc may call memset/memcpy itself). */
#include "guest.h"

void *memset(void *d, int c, unsigned long n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

/* result.detail = a followed by b (either may be NULL), truncated, NUL-terminated. */
void set_detail(const char *a, const char *b)
{
	char *d = RESULT->detail;
	unsigned long i = 0, cap = sizeof(RESULT->detail) - 1;

	for (const char *s = a; s && *s && i < cap; s++)
		d[i++] = *s;
	for (const char *s = b; s && *s && i < cap; s++)
		d[i++] = *s;
	d[i] = 0;
}

void guest_fail(uint32_t status, const char *why)
{
	if (why)  /* NULL: keep the detail the caller already wrote */
		set_detail(why, 0);
	RESULT->status = status;
	guest_finish();
}
