/* Shared helpers for the host workloads (host_syscall, host_ctxswitch, host_signal):
 * option parsing, pinning, timing reads, the calibrated inject chain, shadow-stack
 * enabling/confirmation and the one-line JSON protocol of bench/native.py. */
#ifndef CETBENCH_HOST_COMMON_H
#define CETBENCH_HOST_COMMON_H

#include <stdint.h>
#include <sys/syscall.h>

#include "../native/cet_arch.h"

struct cb_opts {
	uint64_t iterations;    /* --iterations N, required, N >= 1 */
	uint64_t inject_cycles; /* --inject-cycles K, TSC ticks added to every op */
	int cpu;                /* --cpu C, -1 = leave affinity alone */
	int cpu2;               /* --cpu2 C2 (peer process), only if the program takes it */
	int shstk_on;           /* --shstk on|off */
};

/* Which optional options a program takes and its defaults. */
struct cb_spec {
	const char *prog;
	int default_cpu;
	int takes_cpu2;  /* cpu2 defaults to cpu when not given */
};

/* Parses argv; on a usage error prints one line on stderr and exits 2. */
void cb_parse(int argc, char **argv, const struct cb_spec *spec, struct cb_opts *o);

/* Syscall with at most three arguments, inline so that it can run in main() before and
 * after shadow stack is enabled without a call/return pair straddling the switch. */
#define CB_SYSCALL3(nr, a1, a2, a3)                                                    \
	({                                                                             \
		long _ret;                                                             \
		register long _a1 __asm__("rdi") = (long)(a1);                         \
		register long _a2 __asm__("rsi") = (long)(a2);                         \
		register long _a3 __asm__("rdx") = (long)(a3);                         \
		__asm__ volatile("syscall"                                             \
				 : "=a"(_ret)                                          \
				 : "0"((long)(nr)), "r"(_a1), "r"(_a2), "r"(_a3)       \
				 : "rcx", "r11", "memory", "cc");                      \
		_ret;                                                                  \
	})

#define CB_SYSCALL0(nr)                                                                \
	({                                                                             \
		long _ret;                                                             \
		__asm__ volatile("syscall"                                             \
				 : "=a"(_ret)                                          \
				 : "0"((long)(nr))                                     \
				 : "rcx", "r11", "memory", "cc");                      \
		_ret;                                                                  \
	})

/* arch_prctl(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK) as an inline syscall. Use it only in
 * main(), and never return from main afterwards: main's own return address is not on the
 * new (empty) shadow stack (Documentation/arch/x86/shstk.rst; the kernel's selftest
 * tools/testing/selftests/x86/test_shadow_stack.c does the same). */
#define CB_SHSTK_ENABLE_INLINE() \
	CB_SYSCALL3(NR_arch_prctl_x86_64, ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK, 0)

/* After CB_SHSTK_ENABLE_INLINE returned `ret`: exits 3 (kernel refused) or 4 (accepted
 * but /proc/self/status does not show it); returns only when shstk is confirmed on. */
void cb_shstk_confirm(long ret);

/* The shadow stack pointer (RDSSPQ), inline so that reads before and after a loop in one function
 * see the same call depth. RDSSPQ sits in the NOP space: with shadow stack off it leaves 0. */
static inline __attribute__((always_inline)) uint64_t cb_read_ssp(void)
{
	uint64_t ssp = 0;

	__asm__ volatile("rdsspq %0" : "+r"(ssp));
	return ssp;
}

/* Test hook (tests only, never set by the suite): when the environment variable
 * CETBENCH_TEST_DROP_SHSTK names `process` ("process", "parent" or "peer"), turn this
 * thread's shadow stack off with arch_prctl(ARCH_SHSTK_DISABLE) right after the timed loop,
 * as a broken XRSTORS would, so a test can watch cb_ssp_check fail the run. */
void cb_test_drop_shstk(const char *process);

/* After the timed loop: with shadow stack on, the SSP read after the loop must be non-zero
 * and equal to the one read before it (same frame), or the figure was not taken with the
 * shadow stack the variant names: exits 4 naming `process`. A no-op with shadow stack off. */
void cb_ssp_check(const char *process, int shstk_on, uint64_t before, uint64_t after);

/* Shadow stack state as /proc/self/status shows it: 1 on, 0 off, -1 unreadable.
 * `features` receives the x86_Thread_features value; *present says whether the line
 * exists at all (kernels without user shadow stack support do not print it). */
int cb_shstk_observed(char *features, unsigned len, int *present);

/* Pins the calling process to `cpu` (no-op for -1); exits 4 if the kernel refuses. */
void cb_pin(const char *what, int cpu);

/* Timing reads, used only around the whole measured loop. */
uint64_t cb_clock_ns(void); /* CLOCK_MONOTONIC_RAW */

static inline uint64_t cb_tsc(void)
{
	/* RDTSCP waits for earlier instructions to finish; the LFENCE keeps later ones
	 * from starting before the read. */
	uint32_t lo, hi, aux;
	__asm__ volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* The inject chain (loops >= 1): `loops` rounds of a loop-carried dependent add/dec chain seeded
 * with `seed` (the op's result) so it cannot start before the op or overlap itself. The closing
 * LFENCE keeps the next op from starting under the chain's shadow: without it out-of-order
 * execution overlapped part of the delay with the next getppid, and a requested +5 % landed as
 * +3.6 %. The calibration times chain and LFENCE together, so K still counts both. */
static inline uint64_t cb_inject_chain(uint64_t loops, uint64_t seed)
{
	__asm__ volatile("1:\n\t"
			 "add %[n], %[acc]\n\t"
			 "dec %[n]\n\t"
			 "jnz 1b\n\t"
			 "lfence"
			 : [acc] "+r"(seed), [n] "+r"(loops)
			 :
			 : "cc");
	return seed;
}

/* Calibration of the chain against the TSC, done once before the timed loop. */
struct cb_inject {
	uint64_t cycles;         /* K as requested */
	uint64_t loops;          /* chain rounds per op; 0 when K = 0 */
	double ticks_per_call;   /* measured TSC ticks of one chain(loops) call */
};
void cb_inject_calibrate(uint64_t cycles, struct cb_inject *inj);

/* What every measured result carries. */
struct cb_result {
	uint64_t iterations;
	uint64_t elapsed_ns;
	uint64_t tsc_ticks;
	const struct cb_inject *inject;
	uint64_t ssp; /* RDSSP after the loop (0 with shadow stack off), checked by cb_ssp_check */
};

/* Prints the common fields and leaves the object open for workload extras, which the
 * caller prints as `, "key": value`; cb_json_end_exit closes it and exits 0. */
void cb_json_begin(const struct cb_result *r);
void cb_json_end_exit(void) __attribute__((noreturn));

/* Exit 3 / 4 with the one JSON line. Both flush stdout and leave by exit_group. */
void cb_unsupported_exit(const char *reason, int err) __attribute__((noreturn));
void cb_failed_exit(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Flushes stdout and leaves through exit_group, never returning into a frame entered
 * before shadow stack was enabled. */
void cb_exit(int code) __attribute__((noreturn));

/* "EINVAL (Invalid argument)" for err into buf. */
const char *cb_errstr(int err, char *buf, unsigned len);

#endif
