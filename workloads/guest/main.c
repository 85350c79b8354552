/* cetbench guest: checks the loader's params, installs its descriptors, performs the CET setup
 * the params ask for, proves it by reading it back (and by a ring-3 probe), runs one workload,
 * proves CET held through its timed loop by reading everything back again, and reports through
 * struct guest_result. */
#include "guest.h"

struct guest_state g;

static void read_cpuid(struct guest_cpuid_view *v)
{
	uint32_t max, a, b, c, d;

	cpuid(0, 0, &max, &b, &c, &d);
	cpuid(1, 0, &a, &b, &v->c1_ecx, &v->c1_edx);
	if (max >= 7)
		cpuid(7, 0, &a, &b, &v->c7_ecx, &v->c7_edx);
	if (max >= 0xD) {
		cpuid(0xD, 0, &v->cd0_eax, &b, &c, &d);
		cpuid(0xD, 1, &v->cd1_eax, &b, &v->cd1_ecx, &d);
	}
}

/* With SHSTK, a ring-3 run proves the user shadow stack is live: RDSSPQ (a NOP when the shadow
 * stack is off) must read the SSP that IA32_PL3_SSP gave the task, one CALL deep (the kernel keeps
 * what user_exit() reports). Run before the loop, and after it when the loop ran in ring 0. */
static void user_probe(void)
{
	user_exit();
}

void guest_main(void)
{
	struct guest_result *r = RESULT;
	const struct guest_params *p = &g.params;
	int status, ring;

	g.params = *(const struct guest_params *)(uintptr_t)GUEST_PARAMS_GPA;
	r->status = GUEST_STATUS_RUNNING;
	if (p->magic != GUEST_PARAMS_MAGIC || p->abi_version != GUEST_ABI_VERSION)
		guest_fail(GUEST_STATUS_BAD_PARAMS, "params: bad magic or ABI version");
	if ((p->platform != PLATFORM_KVM && p->platform != PLATFORM_BOCHS) || !p->iterations ||
	    p->inject_cycles >> 32 || (p->cet & ~(GUEST_CET_IBT | GUEST_CET_SHSTK)))
		guest_fail(GUEST_STATUS_BAD_PARAMS, "params: bad platform, iterations, inject_cycles or cet");
	if (p->cetu > CETU_OFF || (p->cetu != CETU_NATURAL && !(p->cet & GUEST_CET_SHSTK)))
		guest_fail(GUEST_STATUS_BAD_PARAMS, "params: cetu must be natural without SHSTK");

	desc_install();
	read_cpuid(&g.cpuid);
	r->cpuid7_ecx = g.cpuid.c7_ecx;  /* as read, before the loader's cap */
	r->cpuid7_edx = g.cpuid.c7_edx;
	r->cpuid_d1_eax = g.cpuid.cd1_eax;
	r->cpuid_d1_ecx = g.cpuid.cd1_ecx;
	cet_setup_cap_view(&g.cpuid, p->save_method_max);
	cet_setup_compute(&g.setup, p->cet, p->cetu, &g.cpuid);
	if (p->xss_set) {
		/* The host's XSS, so KVM leaves IA32_XSS alone around entries: only bits this CPUID lets
		 * the guest set (CPUID.(EAX=0DH,ECX=1):ECX), and only with XSAVES in use. */
		if (g.setup.save_method != SAVE_XSAVES || (p->xss_value & ~g.cpuid.cd1_ecx))
			guest_fail(GUEST_STATUS_SETUP_FAILED, "xss=host: the host's IA32_XSS has bits this guest's "
				   "CPUID does not let it set (CPUID.(EAX=0DH,ECX=1):ECX), or XSAVES is not in use");
		g.setup.xss = p->xss_value;
	}
	r->save_method = g.setup.save_method;
	status = cet_configure();
	if (status) {
		cet_read_back();  /* what the guest had when it gave up */
		guest_fail((uint32_t)status, 0);
	}

	if (p->cet & GUEST_CET_SHSTK) {  /* only SHSTK needs ring 3 to prove itself */
		task_prepare(0, user_probe);
		run_task(0);
	}
	cet_read_back();
	if (r->cet_active != p->cet)
		guest_fail(GUEST_STATUS_SETUP_FAILED,
			   "CET read back differs from the request (see cr4, u_cet, s_cet, ssp)");

	inject_calibrate();
	ring = workload_run();
	/* After the loop: the same state again; ring-3 tasks reported their SSP as they left. */
	cet_read_after();
	if (ring == 0 && (p->cet & GUEST_CET_SHSTK)) {
		task_prepare(0, user_probe);
		run_task(0);
	}
	status = cet_verify_after();
	if (status)
		guest_fail((uint32_t)status, 0);
	r->status = GUEST_STATUS_OK;
	guest_finish();
}
