/* host_signal: the process sends SIGUSR1 to its own thread with an inline tgkill; the
 * kernel builds a signal frame (and, with shadow stack on, a shadow-stack token), runs a
 * trivial handler and comes back through rt_sigreturn. One op = one such round trip. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

#define PROCESS_NAME "host_signal process"

static volatile uint64_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

int main(int argc, char **argv)
{
	static const struct cb_spec spec = { "host_signal", -1, 0 };
	struct cb_opts o;
	struct cb_inject inj;
	struct cb_result r;
	struct sigaction sa;
	long pid, tid;
	uint64_t n, loops, acc = 0, t0, t1, c0, c1, ssp0, ssp1;

	cb_parse(argc, argv, &spec, &o);
	/* From here main never returns (see host_syscall.c); exits go through cb_exit. */
	if (o.shstk_on)
		cb_shstk_confirm(CB_SHSTK_ENABLE_INLINE());
	cb_pin("process", o.cpu);

	/* glibc's sigaction supplies the SA_RESTORER trampoline that calls rt_sigreturn. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		cb_failed_exit("sigaction(SIGUSR1) failed");
	pid = CB_SYSCALL0(SYS_getpid);
	tid = CB_SYSCALL0(SYS_gettid);

	cb_inject_calibrate(o.inject_cycles, &inj);
	n = o.iterations;
	loops = inj.loops;

	ssp0 = cb_read_ssp();
	t0 = cb_clock_ns();
	c0 = cb_tsc();
	if (!loops) {
		for (uint64_t i = 0; i < n; i++)
			(void)CB_SYSCALL3(SYS_tgkill, pid, tid, SIGUSR1);
	} else {
		for (uint64_t i = 0; i < n; i++)
			acc = cb_inject_chain(loops, acc + (uint64_t)CB_SYSCALL3(SYS_tgkill, pid, tid, SIGUSR1));
	}
	c1 = cb_tsc();
	t1 = cb_clock_ns();
	/* The shadow stack must have survived the loop (a lost one would file an off figure as on). */
	cb_test_drop_shstk("process");
	ssp1 = cb_read_ssp();
	cb_ssp_check(PROCESS_NAME, o.shstk_on, ssp0, ssp1);

	/* Each tgkill must have been delivered before it returned to user space. */
	if (handled != n)
		cb_failed_exit("sent %llu SIGUSR1 but the handler ran %llu times",
			       (unsigned long long)n, (unsigned long long)handled);
	r = (struct cb_result){ n, t1 - t0, c1 - c0, &inj, ssp1 };
	cb_json_begin(&r);
	(void)acc; /* the chain is asm volatile: it runs whether or not acc is used */
	printf(", \"signal\": \"SIGUSR1\", \"signals_handled\": %llu", (unsigned long long)handled);
	cb_json_end_exit();
}
