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

/* result.detail += s, truncated, NUL-terminated. */
void detail_append(const char *s)
{
	char *d = RESULT->detail;
	unsigned long i = 0, cap = sizeof(RESULT->detail) - 1;

	while (i < cap && d[i])
		i++;
	for (; s && *s && i < cap; s++)
		d[i++] = *s;
	d[i] = 0;
}

/* v as 0x... without leading zeros, in buf (at least 19 bytes); returns where the text starts. */
const char *format_hex(uint64_t v, char *buf)
{
	int i = 18;

	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	return buf + i;
}

/* result.detail += v as 0x... without leading zeros. */
void detail_append_hex(uint64_t v)
{
	char buf[19];

	detail_append(format_hex(v, buf));
}

/* result.detail = a followed by b (either may be NULL), truncated, NUL-terminated. */
void set_detail(const char *a, const char *b)
{
	RESULT->detail[0] = 0;
	detail_append(a);
	detail_append(b);
}

void guest_fail(uint32_t status, const char *why)
{
	if (why)  /* NULL: keep the detail the caller already wrote */
		set_detail(why, 0);
	RESULT->status = status;
	guest_finish();
}
