/* host_syscall: getppid through an inline `syscall` instruction, the op of
 * `perf bench syscall basic`. One op = one getppid. perf calls glibc's getppid() instead, a
 * call/ret around the syscall that costs more than the syscall's own difference on some hosts and
 * nothing CET changes in the kernel: README "Side by side with `perf bench`". */
#define _GNU_SOURCE
#include <stdio.h>

#include "common.h"

#define PROCESS_NAME "host_syscall process"

int main(int argc, char **argv)
{
	static const struct cb_spec spec = { "host_syscall", -1, 0 };
	struct cb_opts o;
	struct cb_inject inj;
	struct cb_result r;
	uint64_t n, loops, acc = 0, t0, t1, c0, c1, ssp0, ssp1;

	cb_parse(argc, argv, &spec, &o);
	/* From here main never returns: its own return address is not on a shadow stack
	 * enabled inside it. Every exit goes through cb_exit (exit_group). */
	if (o.shstk_on)
		cb_shstk_confirm(CB_SHSTK_ENABLE_INLINE());
	cb_pin("process", o.cpu);
	cb_inject_calibrate(o.inject_cycles, &inj);
	n = o.iterations;
	loops = inj.loops;

	ssp0 = cb_read_ssp();
	t0 = cb_clock_ns();
	c0 = cb_tsc();
	if (!loops) {
		for (uint64_t i = 0; i < n; i++)
			(void)CB_SYSCALL0(SYS_getppid);
	} else {
		for (uint64_t i = 0; i < n; i++)
			acc = cb_inject_chain(loops, acc + (uint64_t)CB_SYSCALL0(SYS_getppid));
	}
	c1 = cb_tsc();
	t1 = cb_clock_ns();
	/* The shadow stack must have survived the loop (a lost one would file an off figure as on). */
	cb_test_drop_shstk("process");
	ssp1 = cb_read_ssp();
	cb_ssp_check(PROCESS_NAME, o.shstk_on, ssp0, ssp1);

	r = (struct cb_result){ n, t1 - t0, c1 - c0, &inj, ssp1 };
	cb_json_begin(&r);
	(void)acc; /* the chain is asm volatile: it runs whether or not acc is used */
	printf(", \"syscall\": \"getppid\"");
	cb_json_end_exit();
}
