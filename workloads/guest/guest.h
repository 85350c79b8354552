/* Internal interfaces of the cetbench guest (freestanding, 64-bit, identity-mapped). */
#ifndef CETBENCH_GUEST_H
#define CETBENCH_GUEST_H

#include <stdint.h>
#include "abi.h"
#include "cet_setup.h"
#include "guest/workload_list.h" /* generated from workloads/table.py */

#define RESULT ((struct guest_result *)(uintptr_t)GUEST_RESULT_GPA)

/* Guest system calls (RAX = number). SYS_EXIT takes the task's RDSSP in R12 (user_exit()).
 * SYS_TEST_CET_OFF: GW_TEST_CET_LOST only. */
enum { SYS_NOP = 0, SYS_YIELD = 1, SYS_EXIT = 2, SYS_TEST_CET_OFF = 3 };

/* Register frame the SYSCALL entry pushes (entry.S); field order = reverse push order. */
struct user_frame {
	uint64_t r15, r14, r13, r12, rbp, rbx;
	uint64_t nr;      /* RAX at SYSCALL */
	uint64_t rflags;  /* R11 at SYSCALL, loaded back by SYSRET */
	uint64_t rip;     /* RCX at SYSCALL */
	uint64_t rsp;
};

/* Everything the guest learnt and decided at setup, read by the workloads. */
struct guest_state {
	struct guest_params params;     /* copy of the loader's params */
	struct guest_cpuid_view cpuid;
	struct cet_setup setup;
	uint64_t inject_units;
};
extern struct guest_state g;

/* entry.S */
extern struct user_frame syscall_frame;  /* the frame SYSRET resumes */
void enter_user(void);                   /* runs syscall_frame in ring 3 until SYS_EXIT */
void syscall_entry(void);
void user_task_start(void);              /* ring-3 trampoline: calls RBX, never returns */
extern const uint64_t exc_stub_table[32];
void ud2_insn(void), gp_insn(void), cp_ret_insn(void), cp_endbr_target(void);
void test_ud2(void), test_gp(void), test_cp_ret(void), test_cp_endbr(void);

/* platform.c: the only code that knows which loader runs the guest */
void log_str(const char *s);
void log_hex(uint64_t v);
void phase_mark(uint32_t phase);
int platform_has_hypervisor(void);
__attribute__((noreturn)) void guest_finish(void);

/* desc.c */
void desc_install(void);

/* cet.c */
int cet_configure(void);   /* 0 or GUEST_STATUS_SETUP_FAILED (detail written) */
void cet_read_back(void);  /* before the timed loop */
void cet_read_after(void); /* after it: the registers, in ring 0, before anything else runs */
int cet_verify_after(void); /* 0 or GUEST_STATUS_CET_LOST (detail written) */
void fpu_save(void *area);
void fpu_restore(void *area);

/* kernel.c */
void task_prepare(int t, void (*fn)(void));
void run_task(int t);       /* enters task t in ring 3; returns once every prepared task made SYS_EXIT */
int task_exit_ssp(int t, uint64_t *ssp); /* 1 if task t left by SYS_EXIT: *ssp = its RDSSP there */
int task_last_exited(void); /* whose SYSCALL left its SSP in IA32_PL3_SSP last; -1: none */
long syscall_dispatch(struct user_frame *f);
void guest_exception(uint64_t vector, uint64_t error_code, uint64_t rip, uint64_t cs);

/* workloads.c */
int workload_run(void);     /* returns the ring the timed loop ran at */
void inject_calibrate(void);

/* lib.c */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
void set_detail(const char *a, const char *b);
void detail_append(const char *s);
void detail_append_hex(uint64_t v);
const char *format_hex(uint64_t v, char *buf);
__attribute__((noreturn)) void guest_fail(uint32_t status, const char *why);

/* ---- instructions ---- */
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
/* LFENCE on both sides keeps the read from drifting across the code it brackets. */
static inline uint64_t tsc_read(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}
#define READ_CR(n) ({ uint64_t v_; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v_)); v_; })
#define WRITE_CR(n, v) __asm__ volatile("mov %0, %%cr" #n : : "r"((uint64_t)(v)) : "memory")
/* A ring-3 task's last act: SYS_EXIT with its SSP in R12 (RDSSPQ is a NOP without a user shadow
 * stack, leaving 0). Inlined, so the SSP is that of the function calling it. */
static inline __attribute__((always_inline, noreturn)) void user_exit(void)
{
	__asm__ volatile("xor %%r12d, %%r12d\n\trdsspq %%r12\n\tsyscall"
			 : : "a"((uint64_t)SYS_EXIT) : "rcx", "r11", "r12", "memory");
	__builtin_unreachable();
}
static inline void user_syscall(uint64_t nr)
{
	__asm__ volatile("syscall"
			 : "+a"(nr)
			 :
			 : "rcx", "r11", "rdi", "rsi", "rdx", "r8", "r9", "r10", "memory");
}

#endif
