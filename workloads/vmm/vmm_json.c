/* A tiny JSON writer: the VMM's only output is one JSON object on one line. */
#include <inttypes.h>

#include "vmm.h"

void json_begin(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->need_comma[0] = 0;
	fputc('{', f);
}

void json_end(struct json *j)
{
	fputs("}\n", j->f);
	fflush(j->f);
}

static void key(struct json *j, const char *k)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = 1;
	if (k)
		fprintf(j->f, "\"%s\":", k);
}

static void open_(struct json *j, const char *k, char c)
{
	key(j, k);
	fputc(c, j->f);
	if (j->depth < 7)
		j->need_comma[++j->depth] = 0;
}

void json_obj(struct json *j, const char *k) { open_(j, k, '{'); }
void json_arr(struct json *j, const char *k) { open_(j, k, '['); }
void json_obj_end(struct json *j) { fputc('}', j->f); j->depth--; }
void json_arr_end(struct json *j) { fputc(']', j->f); j->depth--; }

void json_str(struct json *j, const char *k, const char *v)
{
	key(j, k);
	fputc('"', j->f);
	for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(j->f, "\\%c", *s);
		else if (*s < 0x20 || *s >= 0x7f)
			fprintf(j->f, "\\u%04x", *s);
		else
			fputc(*s, j->f);
	}
	fputc('"', j->f);
}

void json_u64(struct json *j, const char *k, uint64_t v) { key(j, k); fprintf(j->f, "%" PRIu64, v); }
void json_i64(struct json *j, const char *k, int64_t v) { key(j, k); fprintf(j->f, "%" PRId64, v); }
void json_bool(struct json *j, const char *k, int v) { key(j, k); fputs(v ? "true" : "false", j->f); }
void json_null(struct json *j, const char *k) { key(j, k); fputs("null", j->f); }

/* Register and MSR values are hex strings, as the SDM writes them. */
void json_hex(struct json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->f, "\"0x%" PRIx64 "\"", v);
}

const char *cetu_name(uint32_t cetu)
{
	static const char *const names[] = { [CETU_NATURAL] = "natural", [CETU_LIVE] = "live", [CETU_INIT] = "init",
					     [CETU_OFF] = "off" };
	return cetu <= CETU_OFF ? names[cetu] : "?";
}

const char *cet_name(uint32_t cet)
{
	static const char *const names[] = { "none", "ibt", "shstk", "ibt+shstk" };
	return names[cet & 3];
}

const char *save_method_name(uint32_t m)
{
	static const char *const names[] = { "none", "fxsave", "xsave", "xsavec", "xsaves" };
	return m < 5 ? names[m] : "none";
}
