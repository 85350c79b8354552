/* CET and state-save setup inside the guest: applies the values cet_setup.h computes (the ones
 * `cetbench-vmm --explain` prints), then reads them back into struct guest_result. */
#include "guest.h"

/* Give the shadow-stack pages their attributes: remap GUEST_SPLIT_REGION_GPA from the loader's
 * 2 MiB page to a 4 KiB page table (walked from CR3, so any loader's tables do). */
static const char *split_region(void)
{
	uint64_t va = GUEST_SPLIT_REGION_GPA, e;
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(READ_CR(3) & PTE_ADDR_MASK), *pdpt, *pd;
	uint64_t *pt = (uint64_t *)(uintptr_t)GUEST_SPLIT_PT_GPA;

	e = pml4[(va >> 39) & 511];
	if ((e & (PTE_P | PTE_RW)) != (PTE_P | PTE_RW))
		return "page tables: PML4 entry of the split region not present and writable";
	pdpt = (uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK);
	e = pdpt[(va >> 30) & 511];
	if ((e & (PTE_P | PTE_RW | PTE_PS)) != (PTE_P | PTE_RW))
		return "page tables: PDPT entry of the split region not a writable page directory";
	pd = (uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK);
	for (uint64_t i = 0; i < 512; i++)
		pt[i] = guest_split_pte(va + i * 0x1000);
	pd[(va >> 21) & 511] = GUEST_SPLIT_PDE;
	WRITE_CR(3, READ_CR(3));  /* flush the old 2 MiB translation */
	return 0;
}

static uint32_t xarea_bytes_needed(void)
{
	uint32_t a, b, c, d;

	switch (g.setup.save_method) {
	case SAVE_XSAVES:
		cpuid(0xD, 1, &a, &b, &c, &d);  /* EBX: size for XCR0 | IA32_XSS, compacted */
		return b;
	case SAVE_XSAVEC:
	case SAVE_XSAVE:
		cpuid(0xD, 0, &a, &b, &c, &d);  /* EBX: size for the current XCR0 */
		return b;
	case SAVE_FXSAVE:
		return 512;
	}
	return 0;
}

int cet_configure(void)
{
	const struct cet_setup *s = &g.setup;
	const char *why = cet_setup_missing(s->cet, &g.cpuid);

	if (why) {
		set_detail(why, 0);
		return GUEST_STATUS_SETUP_FAILED;
	}
	why = split_region();
	if (why) {
		set_detail(why, 0);
		return GUEST_STATUS_SETUP_FAILED;
	}
	if (s->cr4 & CR4_OSXSAVE) {
		WRITE_CR(4, READ_CR(4) | CR4_OSXSAVE);
		__asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)s->xcr0), "d"((uint32_t)(s->xcr0 >> 32)));
	}
	if (s->save_method == SAVE_XSAVES)
		wrmsr(MSR_IA32_XSS, s->xss);
	if (xarea_bytes_needed() > GUEST_XAREA_BYTES) {
		set_detail("state-save area larger than GUEST_XAREA_BYTES", 0);
		return GUEST_STATUS_SETUP_FAILED;
	}
	if (!s->cet)
		return 0;
	/* CR4.CET may be set only while CR0.WP = 1 (SDM vol. 3A 2.5); the boot state has WP. */
	WRITE_CR(0, READ_CR(0) | CR0_WP);
	/* The MSRs first (they take effect with CR4.CET), as Linux's setup_cet() does. */
	wrmsr(MSR_IA32_S_CET, s->s_cet);
	wrmsr(MSR_IA32_U_CET, s->u_cet);
	if (s->cet & GUEST_CET_SHSTK)
		wrmsr(MSR_IA32_PL3_SSP, s->pl3_ssp[0]);
	WRITE_CR(4, READ_CR(4) | CR4_CET);
	return 0;
}

static int has_cet_msrs(void)
{
	return (g.cpuid.c7_ecx & CPUID7_ECX_SHSTK) || (g.cpuid.c7_edx & CPUID7_EDX_IBT);
}

/* The SSP task t reads at its exit with SHSTK (0 without: RDSSPQ is a NOP): one CALL below the top
 * its PL3_SSP gave it (user_task_start calls the task function, which ends in user_exit()). */
static uint64_t exit_ssp_expected(int t)
{
	return (g.setup.cet & GUEST_CET_SHSTK) ? g.setup.pl3_ssp[t] - 8 : 0;
}

/* Read the state back; the CET bits count as active only if the hardware kept them
 * (and, for SHSTK, if ring 3 really ran on its shadow stack: result.ssp from the probe task). */
void cet_read_back(void)
{
	struct guest_result *r = RESULT;
	uint32_t active = 0;

	r->cr0 = READ_CR(0);
	r->cr4 = READ_CR(4);
	r->efer = rdmsr(MSR_EFER);
	r->xss = g.setup.save_method == SAVE_XSAVES ? rdmsr(MSR_IA32_XSS) : 0;
	if (has_cet_msrs()) {
		r->u_cet = rdmsr(MSR_IA32_U_CET);
		r->s_cet = rdmsr(MSR_IA32_S_CET);
	}
	if (g.cpuid.c7_ecx & CPUID7_ECX_SHSTK)
		r->pl3_ssp = rdmsr(MSR_IA32_PL3_SSP);
	(void)task_exit_ssp(0, &r->ssp);  /* the probe task's, if it ran */
	if ((r->cr4 & CR4_CET) && (r->s_cet & CET_ENDBR_EN))
		active |= GUEST_CET_IBT;
	if ((r->cr4 & CR4_CET) && (r->u_cet & CET_SHSTK_EN) && r->ssp == exit_ssp_expected(0))
		active |= GUEST_CET_SHSTK;
	r->cet_active = r->cet_active_before = active;
}

/* What IA32_PL3_SSP must hold after the loop: with SHSTK, the SSP the last SYSCALL (a task's exit)
 * parked there; without, the value before the loop (nothing writes it). */
static uint64_t pl3_ssp_expected;

/* After the timed loop, the registers of cet_read_back() again, in ring 0 and before anything else
 * runs (a probe task would rewrite IA32_PL3_SSP). */
void cet_read_after(void)
{
	struct guest_result *r = RESULT;
	int last = task_last_exited();

	r->cr4_after = READ_CR(4);
	r->xss_after = g.setup.save_method == SAVE_XSAVES ? rdmsr(MSR_IA32_XSS) : 0;
	if (has_cet_msrs()) {
		r->u_cet_after = rdmsr(MSR_IA32_U_CET);
		r->s_cet_after = rdmsr(MSR_IA32_S_CET);
	}
	if (g.cpuid.c7_ecx & CPUID7_ECX_SHSTK)
		r->pl3_ssp_after = rdmsr(MSR_IA32_PL3_SSP);
	pl3_ssp_expected = (g.setup.cet & GUEST_CET_SHSTK) && last >= 0 ? exit_ssp_expected(last) : r->pl3_ssp;
}

/* Appends "NAME want -> got" to the detail when they differ. */
static int changed(const char *name, uint64_t want, uint64_t got)
{
	if (want == got)
		return 0;
	if (RESULT->detail[0])
		detail_append(", ");
	detail_append(name);
	detail_append(" ");
	detail_append_hex(want);
	detail_append(" -> ");
	detail_append_hex(got);
	return 1;
}

/* Compare the after-loop state (registers from cet_read_after(), the SSP every task read in ring 3
 * as it left) with the state before the loop. cet_active keeps what held both times. */
int cet_verify_after(void)
{
	static const char *const ssp_names[GUEST_TASKS] = { "task 0 SSP", "task 1 SSP" };
	struct guest_result *r = RESULT;
	int lost = 0, ssp_lost = 0;
	uint32_t active = 0;

	for (int t = 0; t < GUEST_TASKS; t++)
		if (task_exit_ssp(t, &r->ssp_after[t]))
			r->after_tasks |= 1u << t;
	set_detail(0, 0);
	lost |= changed("CR4", r->cr4, r->cr4_after);
	lost |= changed("S_CET", r->s_cet, r->s_cet_after);
	lost |= changed("U_CET", r->u_cet, r->u_cet_after);
	lost |= changed("XSS", r->xss, r->xss_after);
	ssp_lost |= changed("PL3_SSP", pl3_ssp_expected, r->pl3_ssp_after);
	for (int t = 0; t < GUEST_TASKS; t++)
		if (r->after_tasks & (1u << t))
			ssp_lost |= changed(ssp_names[t], exit_ssp_expected(t), r->ssp_after[t]);
	if ((r->cr4_after & CR4_CET) && (r->s_cet_after & CET_ENDBR_EN))
		active |= GUEST_CET_IBT;
	if ((r->cr4_after & CR4_CET) && (r->u_cet_after & CET_SHSTK_EN) && r->after_tasks && !ssp_lost)
		active |= GUEST_CET_SHSTK;
	r->cet_active_after = active;
	r->cet_active &= active;
	r->after_valid = 1;
	if (!lost && !ssp_lost && active != g.setup.cet)
		detail_append("no ring-3 task reported its SSP");
	if (!lost && !ssp_lost && active == g.setup.cet)
		return 0;
	detail_append(" after the loop");
	return GUEST_STATUS_CET_LOST;
}

/* State save/restore for the context switch: the method chosen in cet_setup_compute().
 * RFBM = all ones: every component enabled in XCR0 (and IA32_XSS for XSAVES), as Linux saves. */
void fpu_save(void *area)
{
	switch (g.setup.save_method) {
	case SAVE_XSAVES:
		__asm__ volatile("xsaves64 (%0)" : : "r"(area), "a"(~0u), "d"(~0u) : "memory");
		break;
	case SAVE_XSAVEC:
		__asm__ volatile("xsavec64 (%0)" : : "r"(area), "a"(~0u), "d"(~0u) : "memory");
		break;
	case SAVE_XSAVE:
		__asm__ volatile("xsave64 (%0)" : : "r"(area), "a"(~0u), "d"(~0u) : "memory");
		break;
	case SAVE_FXSAVE:
		__asm__ volatile("fxsave64 (%0)" : : "r"(area) : "memory");
		break;
	}
}

void fpu_restore(void *area)
{
	switch (g.setup.save_method) {
	case SAVE_XSAVES:
		__asm__ volatile("xrstors64 (%0)" : : "r"(area), "a"(~0u), "d"(~0u) : "memory");
		break;
	case SAVE_XSAVEC:  /* XRSTOR reads the compacted format XSAVEC wrote (XCOMP_BV[63]) */
	case SAVE_XSAVE:
		__asm__ volatile("xrstor64 (%0)" : : "r"(area), "a"(~0u), "d"(~0u) : "memory");
		break;
	case SAVE_FXSAVE:
		__asm__ volatile("fxrstor64 (%0)" : : "r"(area) : "memory");
		break;
	}
}
