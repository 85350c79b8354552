/* Architectural and kernel-ABI constants used by cetbench's native code, each with its source.
 * The Python twin is bench/arch.py; keep the two in step (tests/test_arch_consistency.py checks it). */
#ifndef CETBENCH_CET_ARCH_H
#define CETBENCH_CET_ARCH_H

/* CPUID (Intel SDM vol. 2A, CPUID instruction, leaves 07H and 0DH) */
#define CPUID7_ECX_SHSTK        (1u << 7)   /* CPUID.(EAX=7,ECX=0):ECX[7] CET_SS */
#define CPUID7_EDX_IBT          (1u << 20)  /* CPUID.(EAX=7,ECX=0):EDX[20] CET_IBT */
#define CPUIDD1_EAX_XSAVEOPT    (1u << 0)   /* CPUID.(EAX=0DH,ECX=1):EAX[0] */
#define CPUIDD1_EAX_XSAVEC      (1u << 1)   /* CPUID.(EAX=0DH,ECX=1):EAX[1] */
#define CPUIDD1_EAX_XSAVES      (1u << 3)   /* CPUID.(EAX=0DH,ECX=1):EAX[3] XSAVES/XRSTORS, IA32_XSS */
#define CPUIDD1_ECX_XSS_CET_U   (1u << 11)  /* CPUID.(EAX=0DH,ECX=1):ECX[11] XSS may hold CET_U */
#define CPUIDD1_ECX_XSS_CET_S   (1u << 12)  /* CPUID.(EAX=0DH,ECX=1):ECX[12] XSS may hold CET_S */
#define CPUID1_ECX_XSAVE        (1u << 26)  /* CPUID.01H:ECX[26] XSAVE */
#define CPUID1_EDX_FXSR         (1u << 24)  /* CPUID.01H:EDX[24] FXSAVE/FXRSTOR */

/* Control registers (SDM vol. 3A, 2.5 "Control Registers") */
#define CR0_PE   (1ull << 0)
#define CR0_MP   (1ull << 1)
#define CR0_ET   (1ull << 4)
#define CR0_NE   (1ull << 5)
#define CR0_WP   (1ull << 16)  /* CR4.CET may be set only while CR0.WP = 1 */
#define CR0_PG   (1ull << 31)
#define CR4_PAE        (1ull << 5)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define CR4_CET        (1ull << 23)  /* SDM vol. 3A 2.5; Linux X86_CR4_CET_BIT 23 */
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* MSRs (SDM vol. 4; Linux arch/x86/include/asm/msr-index.h) */
#define MSR_EFER                        0xC0000080u
#define MSR_STAR                        0xC0000081u
#define MSR_LSTAR                       0xC0000082u
#define MSR_SYSCALL_MASK                0xC0000084u
#define MSR_IA32_U_CET                  0x6A0u
#define MSR_IA32_S_CET                  0x6A2u
#define MSR_IA32_PL0_SSP                0x6A4u
#define MSR_IA32_PL1_SSP                0x6A5u
#define MSR_IA32_PL2_SSP                0x6A6u
#define MSR_IA32_PL3_SSP                0x6A7u
#define MSR_IA32_INT_SSP_TAB            0x6A8u
#define MSR_IA32_XSS                    0xDA0u

/* U_CET / S_CET bits (SDM vol. 3A, CET chapter; Linux msr-index.h CET_*) */
#define CET_SHSTK_EN      (1ull << 0)
#define CET_WRSS_EN       (1ull << 1)
#define CET_ENDBR_EN      (1ull << 2)
#define CET_LEG_IW_EN     (1ull << 3)
#define CET_NO_TRACK_EN   (1ull << 4)
#define CET_SUPPRESS_DIS  (1ull << 5)
#define CET_SUPPRESS      (1ull << 10)
#define CET_WAIT_ENDBR    (1ull << 11)

/* XSAVE state components (SDM vol. 1, 13.1; Linux asm/fpu/types.h XFEATURE_CET_USER/KERNEL) */
#define XFEATURE_CET_USER    11
#define XFEATURE_CET_KERNEL  12
#define XSS_CET_U  (1ull << XFEATURE_CET_USER)
#define XSS_CET_S  (1ull << XFEATURE_CET_KERNEL)

/* Exceptions (SDM vol. 3A, 6.15; CET chapter for #CP error codes) */
#define VECTOR_UD 6
#define VECTOR_GP 13
#define VECTOR_PF 14
#define VECTOR_CP 21
#define CP_ERR_NEAR_RET 1
#define CP_ERR_FAR_RET_IRET 2
#define CP_ERR_ENDBRANCH 3
#define CP_ERR_RSTORSSP 4
#define CP_ERR_SETSSBSY 5

/* Linux user shadow stack ABI (arch/x86/include/uapi/asm/prctl.h; Documentation/arch/x86/shstk.rst) */
#define NR_arch_prctl_x86_64   158
#define ARCH_SHSTK_ENABLE      0x5001
#define ARCH_SHSTK_DISABLE     0x5002
#define ARCH_SHSTK_LOCK        0x5003
#define ARCH_SHSTK_UNLOCK      0x5004
#define ARCH_SHSTK_STATUS      0x5005
#define ARCH_SHSTK_SHSTK       (1ull << 0)
#define ARCH_SHSTK_WRSS        (1ull << 1)
/* si_code of the SIGSEGV a user-mode #CP raises (include/uapi/asm-generic/siginfo.h SEGV_CPERR;
 * arch/x86/kernel/cet.c do_user_cp_fault). Older C library headers lack it. */
#define SEGV_CPERR_CODE        10

/* Exit statuses shared by every native workload program (bench/native.py reads them). */
#define EXIT_MEASURED     0
#define EXIT_UNSUPPORTED  3
#define EXIT_FAILED       4
#define EXIT_USAGE        2  /* bad command line: one line on stderr, no JSON */

/* /proc/PID/status line the kernel prints only with CONFIG_X86_USER_SHADOW_STACK:
 * "x86_Thread_features:\t" then space-separated names, "shstk" when enabled
 * (arch/x86/kernel/cpu/proc.c arch_proc_pid_thread_features; Documentation/arch/x86/shstk.rst) */
#define PROC_STATUS_THREAD_FEATURES  "x86_Thread_features:"
#define THREAD_FEATURE_SHSTK         "shstk"

/* ---- used by the micro-VMM guest (workloads/guest) and cetbench-vmm (workloads/vmm) ---- */
/* 4-level paging entry bits (SDM vol. 3A, 4.5 "4-Level Paging", tables 4-14 to 4-20) */
#define PTE_P          (1ull << 0)
#define PTE_RW         (1ull << 1)
#define PTE_US         (1ull << 2)
#define PTE_A          (1ull << 5)
#define PTE_D          (1ull << 6)
#define PTE_PS         (1ull << 7)   /* in a PDE: the entry maps a 2 MiB page */
#define PTE_ADDR_MASK  0x000FFFFFFFFFF000ull
/* A shadow-stack page (SDM vol. 3A, 4.6.1 and the CET chapter "Shadow Stack Pages"): R/W = 0 and
 * Dirty = 1 in the entry that maps the page, R/W = 1 in every other entry of the walk; a CPL3 shadow
 * stack must be a user page (U/S = 1), a supervisor one a supervisor page. */

/* XCR0 state-component bits (SDM vol. 1, 13.1) */
#define XFEATURE_MASK_FP   (1ull << 0)
#define XFEATURE_MASK_SSE  (1ull << 1)
#define XFEATURE_MASK_YMM  (1ull << 2)

/* RFLAGS (SDM vol. 1, 3.4.3) */
#define RFLAGS_FIXED  (1ull << 1)   /* reserved, always 1 */
#define RFLAGS_TF     (1ull << 8)
#define RFLAGS_IF     (1ull << 9)
#define RFLAGS_DF     (1ull << 10)
#define RFLAGS_IOPL3  (3ull << 12)
#define RFLAGS_AC     (1ull << 18)

/* More MSRs (SDM vol. 4; Linux msr-index.h) */
#define MSR_IA32_APICBASE    0x1Bu
#define MSR_IA32_TSC_ADJUST  0x3Bu

/* KVM hypercall ABI (Linux include/uapi/linux/kvm_para.h; Documentation/virt/kvm/x86/hypercalls.rst):
 * KVM_HC_VAPIC_POLL_IRQ is handled in the kernel and returns 0 without an exit to userspace. */
#define KVM_HC_VAPIC_POLL_IRQ  1
#define KVM_ENOSYS             1000

/* CPUID.0 vendor strings (EBX, EDX, ECX) */
#define CPUID_VENDOR_INTEL  "GenuineIntel"
#define CPUID_VENDOR_AMD    "AuthenticAMD"

#endif
