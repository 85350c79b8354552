/* peer_loops: the per-op loops of `perf bench syscall basic` and `perf bench sched pipe`, and ours
 * with one of their differences changed at a time, for benchmarks/peer_compare.py (not a workload:
 * no variants, no shadow stack, no pyperf).
 *
 *   peer_loops MODE --iterations N
 *
 * getppid-inline       our host_syscall op: getppid through an inline `syscall` instruction
 * getppid-call         the same, then a call to an empty function that does not straddle the syscall
 * getppid-libc         perf's op (tools/perf/bench/syscall.c, bench_syscall_common): glibc's getppid(),
 *                      i.e. call -> syscall -> ret
 * pipe-inline          our host_ctxswitch op: 1 byte there and back, inline read/write syscalls
 * pipe-call            the same, plus a call to an empty function after each syscall
 * pipe-inline-perf     the same inline syscalls with perf's other choices: an int (4 bytes) per message,
 *                      fork and waitpid inside the timed span
 * pipe-libc            our op through glibc's read() and write()
 * pipe-perf            perf 6.1's op (tools/perf/bench/sched-pipe.c, worker_thread): glibc read()/write()
 *                      of an int, fork and waitpid inside the timed span, the child reading first
 * pipe-perf-bothwrite  the loop of later perf (the 6.18 sources): both processes write first, then
 *                      read, so two messages are in flight and fewer reads block
 *
 * Prints one JSON line: mode, iterations, elapsed_ns (CLOCK_MONOTONIC_RAW around the loop). The
 * caller pins with taskset (the child inherits it) and takes CPU time and context switches from
 * wait4's rusage, the same way for perf. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../host/common.h"

enum pipe_call { INLINE, CALL_AFTER, LIBC };

/* Not inlined, not a tail call: a call/ret pair next to (not around) the syscall. */
__attribute__((noinline)) static long empty_call(long x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

static inline __attribute__((always_inline)) long do_read(enum pipe_call how, int fd, void *p, long len)
{
	if (how == LIBC)
		return read(fd, p, (size_t)len);
	if (how == CALL_AFTER)
		return empty_call(CB_SYSCALL3(SYS_read, fd, p, len));
	return CB_SYSCALL3(SYS_read, fd, p, len);
}

static inline __attribute__((always_inline)) long do_write(enum pipe_call how, int fd, void *p, long len)
{
	if (how == LIBC)
		return write(fd, p, (size_t)len);
	if (how == CALL_AFTER)
		return empty_call(CB_SYSCALL3(SYS_write, fd, p, len));
	return CB_SYSCALL3(SYS_write, fd, p, len);
}

/* One side of the ping-pong; `how` is a constant at each call site, so each loop is specialised. */
static inline __attribute__((always_inline)) void side(enum pipe_call how, int read_first, int rd, int wr,
							  long len, uint64_t n)
{
	int m = 0;

	for (uint64_t i = 0; i < n; i++) {
		if (read_first) {
			if (do_read(how, rd, &m, len) != len || do_write(how, wr, &m, len) != len)
				exit(1);
		} else {
			if (do_write(how, wr, &m, len) != len || do_read(how, rd, &m, len) != len)
				exit(1);
		}
	}
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr, "usage: peer_loops getppid-inline|getppid-call|getppid-libc|pipe-inline|pipe-call|"
			"pipe-inline-perf|pipe-libc|pipe-perf|pipe-perf-bothwrite --iterations N\n");
	exit(2);
}

static uint64_t run_getppid(const char *mode, uint64_t n)
{
	uint64_t t0 = cb_clock_ns();

	if (!strcmp(mode, "getppid-inline")) {
		for (uint64_t i = 0; i < n; i++)
			(void)CB_SYSCALL0(SYS_getppid);
	} else if (!strcmp(mode, "getppid-call")) {
		for (uint64_t i = 0; i < n; i++)
			(void)empty_call(CB_SYSCALL0(SYS_getppid));
	} else {
		for (uint64_t i = 0; i < n; i++)
			(void)getppid();
	}
	return cb_clock_ns() - t0;
}

static uint64_t run_pipe(const char *mode, uint64_t n)
{
	enum pipe_call how = INLINE;
	int p1[2], p2[2], perf_span = 0, bothwrite = 0, st;
	long len = 1;
	uint64_t t0 = 0, t1;
	pid_t pid;

	if (!strcmp(mode, "pipe-call")) {
		how = CALL_AFTER;
	} else if (!strcmp(mode, "pipe-inline-perf")) {
		len = sizeof(int);
		perf_span = 1;
	} else if (!strcmp(mode, "pipe-libc")) {
		how = LIBC;
	} else if (!strcmp(mode, "pipe-perf") || !strcmp(mode, "pipe-perf-bothwrite")) {
		how = LIBC;
		len = sizeof(int);
		perf_span = 1;
		bothwrite = !strcmp(mode, "pipe-perf-bothwrite");
	} else if (strcmp(mode, "pipe-inline")) {
		usage();
	}
	if (pipe(p1) || pipe(p2))
		exit(1);
	if (perf_span)
		t0 = cb_clock_ns(); /* perf starts its clock before fork() */
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		/* The child reads p1 and writes p2 (perf's threads[0]). */
		if (how == LIBC)
			side(LIBC, !bothwrite, p1[0], p2[1], len, n);
		else if (how == CALL_AFTER)
			side(CALL_AFTER, 1, p1[0], p2[1], len, n);
		else
			side(INLINE, 1, p1[0], p2[1], len, n);
		_exit(0);
	}
	if (!perf_span)
		t0 = cb_clock_ns(); /* ours starts after the peer exists, as host_ctxswitch does */
	if (how == LIBC)
		side(LIBC, 0, p2[0], p1[1], len, n);
	else if (how == CALL_AFTER)
		side(CALL_AFTER, 0, p2[0], p1[1], len, n);
	else
		side(INLINE, 0, p2[0], p1[1], len, n);
	if (!perf_span)
		t1 = cb_clock_ns();
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		exit(1);
	if (perf_span)
		t1 = cb_clock_ns(); /* and stops it after waitpid() */
	return t1 - t0;
}

int main(int argc, char **argv)
{
	const char *mode;
	uint64_t n, elapsed;
	char *end;

	if (argc != 4 || strcmp(argv[2], "--iterations"))
		usage();
	mode = argv[1];
	n = strtoull(argv[3], &end, 10);
	if (*end || !n)
		usage();
	if (!strncmp(mode, "getppid-", 8)) {
		if (strcmp(mode, "getppid-inline") && strcmp(mode, "getppid-call") && strcmp(mode, "getppid-libc"))
			usage();
		elapsed = run_getppid(mode, n);
	} else {
		elapsed = run_pipe(mode, n);
	}
	printf("{\"mode\": \"%s\", \"iterations\": %llu, \"elapsed_ns\": %llu}\n", mode, (unsigned long long)n,
	       (unsigned long long)elapsed);
	return 0;
}
