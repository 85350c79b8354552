/* The CET setup a cetbench guest performs, as values: computed here from the CET configuration and
 * the guest's CPUID, used by the guest (which writes them and reads them back) and by
 * `cetbench-vmm --explain` (which prints them), so both show the same numbers.
 *
 * Choices, each as Linux makes it for its own kernel and tasks:
 *   - ibt:   CR4.CET + IA32_S_CET.ENDBR_EN (kernel IBT); user IBT stays off (U_CET.ENDBR_EN = 0).
 *   - shstk: CR4.CET + IA32_U_CET.SH_STK_EN for the ring-3 tasks, each with its own shadow-stack page;
 *            IA32_PL3_SSP = the top of that page (one past its last byte). SYSRET loads SSP from
 *            IA32_PL3_SSP with no token check (SDM SYSRET operation), so no token is written; Linux
 *            starts a task's shadow stack the same way. No supervisor shadow stack: S_CET.SH_STK_EN = 0,
 *            so PL0_SSP, SETSSBSY/CLRSSBSY busy tokens and the interrupt SSP table are not used.
 *            The CET_U state (U_CET, PL3_SSP) is switched per task by XSAVES/XRSTORS when IA32_XSS may
 *            hold it (CPUID.(0DH,1):ECX[11] and XSAVES), else by RDMSR/WRMSR of IA32_PL3_SSP.
 *   - state save: XSAVES, else XSAVEC, else XSAVE, else FXSAVE (the best the CPUID offers).
 */
#ifndef CETBENCH_CET_SETUP_H
#define CETBENCH_CET_SETUP_H

#include <stdint.h>
#include "abi.h"
#include "../native/cet_arch.h"

_Static_assert(GUEST_BOOT_CR0 == (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG), "abi.h CR0");
_Static_assert(GUEST_BOOT_CR4 == (CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), "abi.h CR4");
_Static_assert(GUEST_BOOT_EFER == (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE), "abi.h EFER");

/* ---- guest-owned memory layout (fixed, so --explain can name every address) ---- */
/* A 2 MiB region the guest remaps with 4 KiB pages: the only way to give single pages the
 * shadow-stack attributes inside the loader's 2 MiB identity map. */
#define GUEST_SPLIT_REGION_GPA  0x400000u
#define GUEST_SPLIT_PT_GPA      0x400000u   /* its page table: the region's first page */
#define GUEST_TASKS             2           /* ring-3 tasks (the context switch alternates them) */
_Static_assert(GUEST_TASKS == GUEST_RESULT_TASKS, "abi.h result holds one exit SSP per task");
#define GUEST_SHSTK_BYTES       0x1000u
/* Shadow stack of task t: one page, with a not-present guard page below and above it. */
#define GUEST_SHSTK_GPA(t)      (0x402000u + (uint32_t)(t) * 0x2000u)
#define GUEST_SHSTK_TOP(t)      (GUEST_SHSTK_GPA(t) + GUEST_SHSTK_BYTES)
#define GUEST_USER_STACK_BYTES  0x4000u
#define GUEST_USER_STACK_TOP(t) (0x414000u + (uint32_t)(t) * 0x8000u)
/* Per-task state-save area (FXSAVE/XSAVE*: 64-byte aligned, at most one page). */
#define GUEST_XAREA_GPA(t)      (0x430000u + (uint32_t)(t) * 0x1000u)
#define GUEST_XAREA_BYTES       0x1000u

/* Ring-3 tasks run with IOPL 3 so the timed loop can OUT its PHASE marks itself. */
#define GUEST_USER_RFLAGS  (RFLAGS_FIXED | RFLAGS_IOPL3)
/* Selectors of the guest's own GDT; STAR makes SYSCALL load 0x08/0x10 and SYSRET 0x2B/0x23. */
#define GUEST_SEL_KCODE   0x08u
#define GUEST_SEL_KDATA   0x10u
#define GUEST_SEL_UCODE32 0x18u  /* SYSRET's base selector (STAR[63:48]); never loaded */
#define GUEST_SEL_UDATA   0x20u
#define GUEST_SEL_UCODE   0x28u
#define GUEST_SEL_TSS     0x30u
#define GUEST_STAR        (((uint64_t)GUEST_SEL_UCODE32 << 48) | ((uint64_t)GUEST_SEL_KCODE << 32))
#define GUEST_SFMASK      (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_AC)

/* The CPUID bits the setup depends on, as the guest reads them (or the VMM sets them). */
struct guest_cpuid_view {
	uint32_t c1_ecx, c1_edx;    /* leaf 1 */
	uint32_t c7_ecx, c7_edx;    /* leaf 7.0 */
	uint32_t cd0_eax;           /* leaf 0xD.0: XCR0 bits supported */
	uint32_t cd1_eax, cd1_ecx;  /* leaf 0xD.1: XSAVES etc.; XSS bits supported */
};

/* How the CET_U state (U_CET, PL3_SSP) follows a task across a context switch. */
enum cet_u_switch { CET_U_SWITCH_NONE = 0, CET_U_SWITCH_XSAVES = 1, CET_U_SWITCH_MSR = 2 };

struct cet_setup {
	uint32_t cet;          /* GUEST_CET_* requested */
	uint32_t save_method;  /* enum guest_save_method */
	uint32_t cet_u_switch; /* enum cet_u_switch */
	uint64_t cr0, cr4, efer, xcr0, xss, u_cet, s_cet;
	uint64_t pl3_ssp[GUEST_TASKS]; /* initial SSP of each ring-3 task */
};

/* NULL when the CPUID enumerates everything `cet` needs, else why not (leaf and bit). */
static inline const char *cet_setup_missing(uint32_t cet, const struct guest_cpuid_view *c)
{
	if ((cet & GUEST_CET_SHSTK) && !(c->c7_ecx & CPUID7_ECX_SHSTK))
		return "SHSTK requested but CPUID.(EAX=7,ECX=0):ECX[7]=0";
	if ((cet & GUEST_CET_IBT) && !(c->c7_edx & CPUID7_EDX_IBT))
		return "IBT requested but CPUID.(EAX=7,ECX=0):EDX[20]=0";
	return 0;
}

static inline uint32_t cet_setup_save_method(const struct guest_cpuid_view *c)
{
	if (c->c1_ecx & CPUID1_ECX_XSAVE) {
		if (c->cd1_eax & CPUIDD1_EAX_XSAVES)
			return SAVE_XSAVES;
		if (c->cd1_eax & CPUIDD1_EAX_XSAVEC)
			return SAVE_XSAVEC;
		return SAVE_XSAVE;
	}
	return (c->c1_edx & CPUID1_EDX_FXSR) ? SAVE_FXSAVE : SAVE_NONE;
}

/* Hide the XSAVE features above `max` (enum guest_save_method; 0 = no cap) from the view. */
static inline void cet_setup_cap_view(struct guest_cpuid_view *c, uint32_t max)
{
	if (!max)
		return;
	if (max < SAVE_XSAVES)
		c->cd1_eax &= ~CPUIDD1_EAX_XSAVES;
	if (max < SAVE_XSAVEC)
		c->cd1_eax &= ~CPUIDD1_EAX_XSAVEC;
	if (max < SAVE_XSAVE)
		c->c1_ecx &= ~CPUID1_ECX_XSAVE;
}

static inline void cet_setup_compute(struct cet_setup *s, uint32_t cet, uint32_t cetu,
				     const struct guest_cpuid_view *c)
{
	/* (the `xss=host` axis replaces s->xss afterwards: main.c) */
	int shstk = (cet & GUEST_CET_SHSTK) != 0, ibt = (cet & GUEST_CET_IBT) != 0;

	s->cet = cet;
	s->save_method = cet_setup_save_method(c);
	s->cr0 = GUEST_BOOT_CR0;  /* includes WP, which CR4.CET requires */
	s->cr4 = GUEST_BOOT_CR4 | ((c->c1_ecx & CPUID1_ECX_XSAVE) ? CR4_OSXSAVE : 0) |
		 ((shstk || ibt) ? CR4_CET : 0);
	s->efer = GUEST_BOOT_EFER;
	s->xcr0 = (c->c1_ecx & CPUID1_ECX_XSAVE) ?
		(XFEATURE_MASK_FP | XFEATURE_MASK_SSE | (c->cd0_eax & XFEATURE_MASK_YMM)) : 0;
	/* cetu=off keeps CET_U out of IA32_XSS: XSAVES then never touches U_CET/PL3_SSP */
	s->xss = (shstk && cetu != CETU_OFF && s->save_method == SAVE_XSAVES &&
		  (c->cd1_ecx & CPUIDD1_ECX_XSS_CET_U)) ? XSS_CET_U : 0;
	s->cet_u_switch = !shstk ? CET_U_SWITCH_NONE : s->xss ? CET_U_SWITCH_XSAVES : CET_U_SWITCH_MSR;
	s->u_cet = shstk ? CET_SHSTK_EN : 0;
	s->s_cet = ibt ? CET_ENDBR_EN : 0;
	for (int t = 0; t < GUEST_TASKS; t++)
		s->pl3_ssp[t] = shstk ? GUEST_SHSTK_TOP(t) : 0;
}

/* The page-table entry the guest writes for page `gpa` of the split region: the page table itself
 * and ordinary pages writable, each task's shadow stack a user shadow-stack page (R/W=0, D=1),
 * and the pages either side of a shadow stack not present (guards). The same layout is used
 * whatever the CET configuration, so every variant has the same mappings. */
static inline uint64_t guest_split_pte(uint64_t gpa)
{
	for (int t = 0; t < GUEST_TASKS; t++) {
		if (gpa == GUEST_SHSTK_GPA(t))
			return gpa | PTE_P | PTE_US | PTE_A | PTE_D;
		if (gpa == GUEST_SHSTK_GPA(t) - 0x1000u || gpa == GUEST_SHSTK_TOP(t))
			return 0;
	}
	return gpa | PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
}

/* The PDE that points the split region at its page table (R/W=1 as a shadow-stack walk needs). */
#define GUEST_SPLIT_PDE ((uint64_t)GUEST_SPLIT_PT_GPA | PTE_P | PTE_RW | PTE_US | PTE_A)

#endif
