/* Shared helpers for the host workloads; see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Upper bound for --inject-cycles: 10^7 ticks (a few ms per op) is far beyond any delay
 * the suite needs, and keeps the startup calibration short. */
#define INJECT_MAX 10000000ull

static const struct cb_spec *spec_for_usage;

static void usage_exit(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage_exit(const char *fmt, ...)
{
	const struct cb_spec *s = spec_for_usage;
	va_list ap;

	fprintf(stderr, "%s: ", s->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (usage: %s --iterations N [--inject-cycles K] [--cpu C]%s [--shstk on|off])\n",
		s->prog, s->takes_cpu2 ? " [--cpu2 C2]" : "");
	exit(EXIT_USAGE);
}

/* Whole-string unsigned decimal in [lo, hi]; returns 0 on success. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_cpu(const char *name, const char *s)
{
	uint64_t v;

	if (!strcmp(s, "-1"))
		return -1;
	if (parse_u64(s, 0, CPU_SETSIZE - 1, &v))
		usage_exit("%s wants a CPU number or -1, got '%s'", name, s);
	return (int)v;
}

void cb_parse(int argc, char **argv, const struct cb_spec *spec, struct cb_opts *o)
{
	int have_iter = 0, have_cpu2 = 0;

	spec_for_usage = spec;
	memset(o, 0, sizeof(*o));
	o->cpu = spec->default_cpu;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val, *eq;
		char name[32];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			printf("usage: %s --iterations N [--inject-cycles K] [--cpu C]%s [--shstk on|off]\n",
			       spec->prog, spec->takes_cpu2 ? " [--cpu2 C2]" : "");
			exit(0);
		}
		if (strncmp(arg, "--", 2))
			usage_exit("unexpected argument '%s'", arg);
		/* Accept both "--opt value" and "--opt=value". */
		eq = strchr(arg, '=');
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", arg);
			if (i + 1 >= argc)
				usage_exit("%s needs a value", name);
			val = argv[++i];
		}

		if (!strcmp(name, "--iterations")) {
			if (parse_u64(val, 1, UINT64_MAX, &o->iterations))
				usage_exit("--iterations wants an integer >= 1, got '%s'", val);
			have_iter = 1;
		} else if (!strcmp(name, "--inject-cycles")) {
			if (parse_u64(val, 0, INJECT_MAX, &o->inject_cycles))
				usage_exit("--inject-cycles wants an integer in 0..%llu, got '%s'",
					   INJECT_MAX, val);
		} else if (!strcmp(name, "--cpu")) {
			o->cpu = parse_cpu(name, val);
		} else if (!strcmp(name, "--cpu2") && spec->takes_cpu2) {
			o->cpu2 = parse_cpu(name, val);
			have_cpu2 = 1;
		} else if (!strcmp(name, "--shstk")) {
			if (!strcmp(val, "on"))
				o->shstk_on = 1;
			else if (!strcmp(val, "off"))
				o->shstk_on = 0;
			else
				usage_exit("--shstk wants 'on' or 'off', got '%s'", val);
		} else {
			usage_exit("unknown option '%s'", name);
		}
	}
	if (!have_iter)
		usage_exit("--iterations is required");
	if (!have_cpu2)
		o->cpu2 = o->cpu;
}

const char *cb_errstr(int err, char *buf, unsigned len)
{
	const char *name = strerrorname_np(err);

	if (name)
		snprintf(buf, len, "%s (%s)", name, strerror(err));
	else
		snprintf(buf, len, "errno %d (%s)", err, strerror(err));
	return buf;
}

/* The line starts after a newline (the buffer gets one prepended for the first line). */
#define STATUS_KEY "\n" PROC_STATUS_THREAD_FEATURES

int cb_shstk_observed(char *features, unsigned len, int *present)
{
	char buf[8192];
	ssize_t n, got = 0;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	const char *p, *end;

	features[0] = 0;
	*present = 0;
	if (fd < 0)
		return -1;
	buf[got++] = '\n'; /* so the key also matches on the first line */
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;

	p = strstr(buf, STATUS_KEY);
	if (!p)
		return 0; /* kernel without user shadow stack: the line is absent */
	*present = 1;
	p += strlen(STATUS_KEY);
	p += strspn(p, " \t");
	end = strchr(p, '\n');
	if (!end)
		end = p + strlen(p);
	snprintf(features, len, "%.*s", (int)(end - p), p);

	/* The value is a space separated list such as "shstk wrss". */
	for (const char *t = p; t < end;) {
		size_t w = strcspn(t, " \t\n");

		if (w == strlen(THREAD_FEATURE_SHSTK) && !strncmp(t, THREAD_FEATURE_SHSTK, w))
			return 1;
		t += w;
		t += strspn(t, " \t");
	}
	return 0;
}

void cb_shstk_confirm(long ret)
{
	char reason[200], err[96], features[128];
	int state, present;

	if (ret < 0) {
		snprintf(reason, sizeof(reason),
			 "kernel refused arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK): %s",
			 cb_errstr((int)-ret, err, sizeof(err)));
		cb_unsupported_exit(reason, (int)-ret);
	}
	if (ret > 0)
		cb_failed_exit("arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK) returned %ld", ret);
	state = cb_shstk_observed(features, sizeof(features), &present);
	if (state < 0)
		cb_failed_exit("arch_prctl(ARCH_SHSTK_ENABLE) succeeded but /proc/self/status is unreadable");
	if (state == 0 && !present)
		cb_failed_exit("arch_prctl(ARCH_SHSTK_ENABLE) succeeded but /proc/self/status "
			       "has no x86_Thread_features line");
	if (state == 0)
		cb_failed_exit("arch_prctl(ARCH_SHSTK_ENABLE) succeeded but /proc/self/status "
			       "x86_Thread_features is '%s', without shstk", features);
	if (!cb_read_ssp())
		cb_failed_exit("kernel reports shstk enabled but RDSSP reads 0");
}

void cb_test_drop_shstk(const char *process)
{
	const char *who = getenv("CETBENCH_TEST_DROP_SHSTK");
	long ret;

	if (!who || strcmp(who, process) || !cb_read_ssp())
		return; /* not asked, or no shadow stack to drop */
	/* Inline syscall: no call frame straddles the switch. Returning afterwards is safe (no
	 * shadow stack is checked any more). */
	ret = CB_SYSCALL3(NR_arch_prctl_x86_64, ARCH_SHSTK_DISABLE, ARCH_SHSTK_SHSTK, 0);
	if (ret)
		cb_failed_exit("test hook: arch_prctl(ARCH_SHSTK_DISABLE) in the %s returned %ld", process, ret);
}

void cb_ssp_check(const char *process, int shstk_on, uint64_t before, uint64_t after)
{
	if (!shstk_on)
		return;
	if (!after || after != before)
		cb_failed_exit("shadow stack lost in the %s: RDSSP read 0x%" PRIx64 " before the timed loop "
			       "and 0x%" PRIx64 " after it", process, before, after);
}

void cb_pin(const char *what, int cpu)
{
	cpu_set_t set;
	char err[96];

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		cb_failed_exit("sched_setaffinity(%s to CPU %d): %s", what, cpu,
			       cb_errstr(errno, err, sizeof(err)));
}

uint64_t cb_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t inject_sink;

/* TSC ticks of one chain(loops) call: the fastest of many short batches. Preemption,
 * interrupts and a hypervisor's steal only ever add ticks, and a short batch often
 * escapes them all, so the minimum is what the chain itself costs. */
static double ticks_per_call(uint64_t loops, uint64_t cycles)
{
	uint64_t reps = (1ull << 16) / cycles, best = UINT64_MAX, acc = 1;

	if (reps < 1)
		reps = 1;
	if (reps > 1024)
		reps = 1024;
	for (int b = 0; b < 31; b++) {
		uint64_t t0 = cb_tsc();

		for (uint64_t r = 0; r < reps; r++)
			acc = cb_inject_chain(loops, acc);
		uint64_t t = cb_tsc() - t0;

		if (t < best)
			best = t;
	}
	inject_sink = acc;
	return (double)best / (double)reps;
}

void cb_inject_calibrate(uint64_t cycles, struct cb_inject *inj)
{
	uint64_t loops = cycles;

	inj->cycles = cycles;
	inj->loops = 0;
	inj->ticks_per_call = 0;
	if (!cycles)
		return;
	/* Scale the loop count until one call takes K ticks; a few rounds settle it
	 * (the per-call fixed cost and the core/TSC clock ratio are both absorbed). */
	for (int round = 0; round < 4; round++) {
		double t = ticks_per_call(loops, cycles);
		double next = (double)loops * (double)cycles / (t > 0 ? t : 1);

		loops = next < 1 ? 1 : (uint64_t)(next + 0.5);
	}
	inj->loops = loops;
	inj->ticks_per_call = ticks_per_call(loops, cycles);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void cb_json_begin(const struct cb_result *r)
{
	char features[128];
	int present, state = cb_shstk_observed(features, sizeof(features), &present);

	if (state < 0)
		cb_failed_exit("cannot read /proc/self/status to observe the shadow stack state");
	printf("{\"iterations\": %" PRIu64 ", \"elapsed_ns\": %" PRIu64 ", \"tsc_ticks\": %" PRIu64
	       ", \"cpu\": %d, \"inject_cycles\": %" PRIu64 ", \"inject_loops_per_op\": %" PRIu64
	       ", \"inject_calibrated_ticks\": %.1f, \"shstk\": \"%s\", \"ssp\": \"0x%" PRIx64
	       "\", \"x86_thread_features\": ",
	       r->iterations, r->elapsed_ns, r->tsc_ticks, sched_getcpu(), r->inject->cycles,
	       r->inject->loops, r->inject->ticks_per_call, state ? "on" : "off", r->ssp);
	if (present)
		json_string(features);
	else
		printf("null");
}

void cb_exit(int code)
{
	fflush(stdout);
	fflush(stderr);
	for (;;)
		CB_SYSCALL3(SYS_exit_group, code, 0, 0);
}

void cb_json_end_exit(void)
{
	printf("}\n");
	cb_exit(EXIT_MEASURED);
}

void cb_unsupported_exit(const char *reason, int err)
{
	printf("{\"unsupported\": ");
	json_string(reason);
	printf(", \"refused_by\": \"kernel\", \"errno\": %d}\n", err);
	cb_exit(EXIT_UNSUPPORTED);
}

void cb_failed_exit(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"error\": ");
	json_string(msg);
	printf("}\n");
	cb_exit(EXIT_FAILED);
}
