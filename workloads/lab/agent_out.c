/* JSON text and the framed lines the lab agent writes to the serial console; see agent.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

void jb_init(struct jbuf *b)
{
	b->cap = 4096;
	b->len = 0;
	b->s = malloc(b->cap);
	if (!b->s)
		abort();
	b->s[0] = 0;
}

static void jb_reserve(struct jbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap *= 2;
	b->s = realloc(b->s, b->cap);
	if (!b->s)
		abort();
}

void jb_raw(struct jbuf *b, const char *s)
{
	size_t n = strlen(s);

	jb_reserve(b, n);
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	jb_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void jb_str(struct jbuf *b, const char *s, size_t n)
{
	jb_reserve(b, n * 6 + 2);
	b->s[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			b->s[b->len++] = '\\';
			b->s[b->len++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			/* Bytes, not characters: the host reads them back as latin-1 code points, so
			 * non-ASCII text can never make the line invalid JSON. */
			b->len += (size_t)sprintf(b->s + b->len, "\\u%04x", c);
		} else {
			b->s[b->len++] = (char)c;
		}
	}
	b->s[b->len++] = '"';
	b->s[b->len] = 0;
}

void jb_key(struct jbuf *b, const char *key)
{
	if (b->len && b->s[b->len - 1] != '{')
		jb_raw(b, ",");
	jb_str(b, key, strlen(key));
	jb_raw(b, ":");
}

void jb_free(struct jbuf *b)
{
	free(b->s);
	b->s = NULL;
}

uint32_t lab_crc32(const char *data, size_t n)
{
	/* CRC-32 (IEEE 802.3, reflected 0xEDB88320): Python's zlib.crc32. */
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= (unsigned char)data[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

void lab_emit(const char *kind, const struct jbuf *json)
{
	struct jbuf line;
	size_t off = 0;

	jb_init(&line);
	/* A leading newline ends whatever the kernel may have left unfinished on the console. */
	jb_printf(&line, "\n%s %s %08x ", LAB_LINE_TAG, kind, lab_crc32(json->s, json->len));
	jb_raw(&line, json->s);
	jb_raw(&line, "\n");
	/* Let the UART finish what it holds before and after: the kernel writes its own messages
	 * straight to the port and cut a pending line short in the prototype. */
	tcdrain(STDOUT_FILENO);
	while (off < line.len) {
		ssize_t w = write(STDOUT_FILENO, line.s + off, line.len - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	tcdrain(STDOUT_FILENO);
	jb_free(&line);
}

double lab_uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
