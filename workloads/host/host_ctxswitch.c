/* host_ctxswitch: two processes pass one byte back and forth through two pipes, the op
 * of `perf bench sched pipe` (perf 6.1's loop: the peer reads first). One op = one round trip;
 * with both processes on one CPU each round trip is two context switches. The inject delay is
 * added in the parent, once per round trip. Inline syscalls where perf calls glibc's read() and
 * write(): README "Side by side with `perf bench`" measures what that changes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* The peer's first message: what it sees of itself before the loop. */
struct hello {
	int32_t shstk;     /* 1 on, 0 off, -1 /proc/self/status unreadable */
	int32_t pin_errno; /* 0, or why sched_setaffinity refused the peer's CPU */
};

/* The peer's last message, after the loop. */
struct bye {
	uint64_t switches;   /* its voluntary + involuntary context switches in the loop */
	uint64_t ssp_before; /* its RDSSP before and after the loop (the parent checks them) */
	uint64_t ssp_after;
	int32_t cpu;         /* sched_getcpu() at the end */
	int32_t pad;
};

static uint64_t switches_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

/* Exact-size message over a pipe, outside the timed loop; 0 on success. */
static int put_msg(int fd, const void *p, long len)
{
	return CB_SYSCALL3(SYS_write, fd, p, len) == len ? 0 : -1;
}

static int get_msg(int fd, void *p, long len)
{
	return CB_SYSCALL3(SYS_read, fd, p, len) == len ? 0 : -1;
}

/* The peer: answers every byte, then reports and leaves by exit_group (it shares main's
 * shadow stack copy, so it must not return from main either). */
static void peer(int rd, int wr, uint64_t n, int cpu2) __attribute__((noreturn));
static void peer(int rd, int wr, uint64_t n, int cpu2)
{
	struct hello h = { 0, 0 };
	struct bye b = { 0, 0, 0, 0, 0 };
	char features[128], byte;
	int present;
	uint64_t s0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cpu2 >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu2, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			h.pin_errno = errno;
	}
	h.shstk = cb_shstk_observed(features, sizeof(features), &present);
	if (put_msg(wr, &h, sizeof(h)) || h.pin_errno)
		CB_SYSCALL3(SYS_exit_group, 1, 0, 0);

	s0 = switches_now();
	b.ssp_before = cb_read_ssp();
	for (uint64_t i = 0; i < n; i++) {
		if (CB_SYSCALL3(SYS_read, rd, &byte, 1) != 1 ||
		    CB_SYSCALL3(SYS_write, wr, &byte, 1) != 1)
			CB_SYSCALL3(SYS_exit_group, 1, 0, 0);
	}
	cb_test_drop_shstk("peer");
	b.ssp_after = cb_read_ssp();
	b.switches = switches_now() - s0;
	b.cpu = sched_getcpu();
	put_msg(wr, &b, sizeof(b));
	for (;;)
		CB_SYSCALL3(SYS_exit_group, 0, 0, 0);
}

/* Reaps the peer and describes how it ended, for an error message. */
static const char *peer_end(pid_t pid, char *buf, unsigned len)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		snprintf(buf, len, "could not be reaped");
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	return buf;
}

int main(int argc, char **argv)
{
	static const struct cb_spec spec = { "host_ctxswitch", 0, 1 };
	struct cb_opts o;
	struct cb_inject inj;
	struct cb_result r;
	struct hello h;
	struct bye b;
	int p1[2], p2[2], wr, rd, st;
	char byte = 'x', why[64];
	pid_t pid;
	uint64_t n, loops, acc = 0, t0, t1, c0, c1, s0, s1, ssp0, ssp1;

	cb_parse(argc, argv, &spec, &o);
	/* From here main never returns (see host_syscall.c); exits go through cb_exit. */
	if (o.shstk_on)
		cb_shstk_confirm(CB_SHSTK_ENABLE_INLINE());
	cb_pin("parent", o.cpu);
	cb_inject_calibrate(o.inject_cycles, &inj);
	n = o.iterations;
	loops = inj.loops;

	/* A dead peer must show up as EPIPE, not kill us before we can say so. */
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(p1, O_CLOEXEC) || pipe2(p2, O_CLOEXEC))
		cb_failed_exit("pipe2 failed: errno %d", errno);
	fflush(stdout);
	pid = fork(); /* the child inherits the shadow stack state (a copy of it) */
	if (pid < 0)
		cb_failed_exit("fork failed: errno %d", errno);
	if (pid == 0) {
		close(p1[1]);
		close(p2[0]);
		peer(p1[0], p2[1], n, o.cpu2);
	}
	close(p1[0]);
	close(p2[1]);
	wr = p1[1];
	rd = p2[0];

	if (get_msg(rd, &h, sizeof(h)))
		cb_failed_exit("peer process %s before reporting", peer_end(pid, why, sizeof(why)));
	if (h.pin_errno) {
		char err[96];

		waitpid(pid, &st, 0);
		cb_failed_exit("sched_setaffinity(peer to CPU %d): %s", o.cpu2,
			       cb_errstr(h.pin_errno, err, sizeof(err)));
	}
	if (h.shstk < 0)
		cb_failed_exit("peer process could not read /proc/self/status");
	if (o.shstk_on && h.shstk != 1)
		cb_failed_exit("shadow stack is on in the parent but the forked peer's "
			       "/proc/self/status does not show shstk");

	s0 = switches_now();
	ssp0 = cb_read_ssp();
	t0 = cb_clock_ns();
	c0 = cb_tsc();
	if (!loops) {
		for (uint64_t i = 0; i < n; i++) {
			if (__builtin_expect(CB_SYSCALL3(SYS_write, wr, &byte, 1) != 1 ||
					     CB_SYSCALL3(SYS_read, rd, &byte, 1) != 1, 0))
				goto peer_died;
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			if (__builtin_expect(CB_SYSCALL3(SYS_write, wr, &byte, 1) != 1 ||
					     CB_SYSCALL3(SYS_read, rd, &byte, 1) != 1, 0))
				goto peer_died;
			acc = cb_inject_chain(loops, acc + (uint64_t)byte);
		}
	}
	c1 = cb_tsc();
	t1 = cb_clock_ns();
	s1 = switches_now();
	/* Both processes' shadow stacks must have survived the loop (see host_syscall.c). */
	cb_test_drop_shstk("parent");
	ssp1 = cb_read_ssp();

	if (get_msg(rd, &b, sizeof(b)))
		goto peer_died;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		cb_failed_exit("peer process did not exit cleanly after the loop");
	cb_ssp_check("host_ctxswitch parent process", o.shstk_on, ssp0, ssp1);
	cb_ssp_check("host_ctxswitch peer process", o.shstk_on, b.ssp_before, b.ssp_after);

	r = (struct cb_result){ n, t1 - t0, c1 - c0, &inj, ssp1 };
	cb_json_begin(&r);
	(void)acc; /* the chain is asm volatile: it runs whether or not acc is used */
	printf(", \"round_trips\": %llu, \"switches_per_op\": %.3f, \"peer_cpu\": %d, \"peer_shstk\": \"%s\"",
	       (unsigned long long)n, (double)(s1 - s0 + b.switches) / (double)n, b.cpu,
	       h.shstk ? "on" : "off");
	cb_json_end_exit();

peer_died:
	cb_failed_exit("peer process %s during the loop", peer_end(pid, why, sizeof(why)));
}
