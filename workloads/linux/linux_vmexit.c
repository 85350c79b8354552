/* linux_vmexit_cpuid / linux_vmexit_pio: VM exits taken from a Linux guest's user space, the op of
 * the linux.vmexit.* workloads (built twice from this file, workloads/recipes.py).
 *   CPUID leaf 0: an exit KVM answers in the host kernel (VMX/SVM intercept CPUID unconditionally).
 *   OUT to port 0x80: QEMU's "ioport80" device, an exit KVM hands to QEMU in user space (KVM_EXIT_IO),
 *   so every op returns from KVM_RUN to the VMM and back (the FPU swap with the guest's CET_USER state).
 * Under TCG neither op leaves the emulator: the figures are then labelled emulated by the suite. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/io.h>

#include "../host/common.h"

#define PORT_DUMMY 0x80 /* QEMU hw/i386/pc.c ioport80: writes are accepted and dropped */

#if defined(CB_OP_CPUID)
#define PROG "linux_vmexit_cpuid"
#define OP_NAME "cpuid"
static inline __attribute__((always_inline)) uint64_t op(void)
{
	uint32_t a = 0, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
	return a;
}
#elif defined(CB_OP_PIO)
#define PROG "linux_vmexit_pio"
#define OP_NAME "pio"
static inline __attribute__((always_inline)) uint64_t op(void)
{
	__asm__ volatile("outb %%al, %[port]" : : "a"((uint8_t)0), [port] "i"(PORT_DUMMY) : "memory");
	return 0;
}
#else
#error "build with -DCB_OP_CPUID or -DCB_OP_PIO"
#endif

int main(int argc, char **argv)
{
	static const struct cb_spec spec = { PROG, -1, 0 };
	struct cb_opts o;
	struct cb_inject inj;
	struct cb_result r;
	uint64_t n, loops, acc = 0, t0, t1, c0, c1, ssp0, ssp1;
	char reason[160], err[96];

	cb_parse(argc, argv, &spec, &o);
#if defined(CB_OP_PIO)
	/* Port access for this task only; before shstk is on, since ioperm is a libc call that returns. */
	if (ioperm(PORT_DUMMY, 1, 1)) {
		snprintf(reason, sizeof(reason), "kernel refused ioperm(0x%x): %s", PORT_DUMMY,
			 cb_errstr(errno, err, sizeof(err)));
		cb_unsupported_exit(reason, errno);
	}
#else
	(void)reason;
	(void)err;
#endif
	/* From here main never returns (see host_syscall.c). */
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
			acc += op();
	} else {
		for (uint64_t i = 0; i < n; i++)
			acc = cb_inject_chain(loops, acc + op());
	}
	c1 = cb_tsc();
	t1 = cb_clock_ns();
	cb_test_drop_shstk("process");
	ssp1 = cb_read_ssp();
	cb_ssp_check(PROG " process", o.shstk_on, ssp0, ssp1);

	r = (struct cb_result){ n, t1 - t0, c1 - c0, &inj, ssp1 };
	cb_json_begin(&r);
	(void)acc;
	printf(", \"op\": \"" OP_NAME "\"");
	cb_json_end_exit();
}
