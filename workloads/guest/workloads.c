/* The guest workloads (rows in workload_list.h) and the timed loop around them.
 * The loop is timed in the guest with LFENCE;RDTSC;LFENCE and marked for the host with
 * OUT PORT_PHASE at both ends; per op it runs the op, then the calibrated injected delay. */
#include "guest.h"

typedef void (*op_fn)(void);

struct workload {
	uint32_t id;
	int ring;
	op_fn (*setup)(op_fn op);
	op_fn op;
	void (*run)(op_fn op);
};

static op_fn selected_op;
static const struct workload *selected;

/* ---- injected delay: `units` links of a dependent multiply chain, calibrated against RDTSC */
static void inject_delay(uint64_t units)
{
	uint64_t x = units | 1;

	for (uint64_t i = 0; i < units; i++)
		__asm__ volatile("imul %0, %0" : "+r"(x));
}

void inject_calibrate(void)
{
	uint64_t want = g.params.inject_cycles, n = 1024, dt;

	g.inject_units = 0;
	if (!want)
		return;
	for (;;) {
		uint64_t t0 = tsc_read();
		inject_delay(n);
		dt = tsc_read() - t0;
		if (dt >= 1000000 || n >= (1ull << 30))
			break;
		n *= 2;
	}
	/* want < 2^32 (VMM checks) and n <= 2^30, so the product fits in 64 bits */
	g.inject_units = dt ? (want * n + dt / 2) / dt : 0;
	RESULT->inject_units = (uint32_t)g.inject_units;
}

/* ---- ops */
static void op_empty(void) {}
static void op_cpuid(void)
{
	uint32_t a, b, c, d;
	cpuid(0, 0, &a, &b, &c, &d);
}
static void op_vmcall(void)
{
	uint64_t ret = KVM_HC_VAPIC_POLL_IRQ;
	__asm__ volatile("vmcall" : "+a"(ret) : : "memory");
}
static void op_vmmcall(void)
{
	uint64_t ret = KVM_HC_VAPIC_POLL_IRQ;
	__asm__ volatile("vmmcall" : "+a"(ret) : : "memory");
}
static void op_rdmsr(void) { (void)rdmsr(g.params.msr_index); }
static void op_out(void) { outb(PORT_OP, 0); }
static void op_syscall(void) { user_syscall(SYS_NOP); }
static void op_ud2(void) { test_ud2(); }
static void op_gp(void) { test_gp(); }
static void op_hang(void)
{
	for (;;)
		__asm__ volatile("pause");
}
static void op_cp_ret(void) { test_cp_ret(); }
static void op_cp_endbr(void) { test_cp_endbr(); }
static void op_cet_lost(void) { user_syscall(SYS_TEST_CET_OFF); }

/* xsaves/xrstors: the state-save instructions of the context switch, alone, on one area */
static uint8_t xarea[GUEST_XAREA_BYTES] __attribute__((aligned(64)));
static void op_xsaves(void) { fpu_save(xarea); }
static void op_xrstors(void) { fpu_restore(xarea); }

/* ---- setups: return the op the loop times */
static op_fn setup_plain(op_fn op) { return op; }
static op_fn setup_vmexit(op_fn op) { return platform_has_hypervisor() ? op : op_empty; }
static op_fn setup_hypercall(op_fn op)
{
	(void)op;
	if (!platform_has_hypervisor())
		return op_empty;
	if (g.params.vendor == VENDOR_AMD)
		return op_vmmcall;
	if (g.params.vendor == VENDOR_INTEL)
		return op_vmcall;
	guest_fail(GUEST_STATUS_BAD_PARAMS, "params.vendor is neither VENDOR_INTEL nor VENDOR_AMD");
}

static op_fn setup_xsave(op_fn op)
{
	if (g.setup.save_method != SAVE_XSAVES)
		guest_fail(GUEST_STATUS_SETUP_FAILED, "XSAVES is not enumerated (CPUID.(EAX=0DH,ECX=1):EAX[3])");
	fpu_save(xarea);  /* an image for XRSTORS, and the area's pages touched before the loop */
	return op;
}

/* ---- timed loops */
static void timed_loop(op_fn op)
{
	struct guest_result *r = RESULT;
	uint64_t n = g.params.iterations, units = g.inject_units;

	phase_mark(PHASE_LOOP_BEGIN);
	r->tsc_begin = tsc_read();
	for (uint64_t i = 0; i < n; i++) {
		op();
		inject_delay(units);
	}
	r->tsc_end = tsc_read();
	phase_mark(PHASE_LOOP_END);
	r->ops = n;
}

/* ctxswitch: both tasks run this loop; one op = one switch (yield) to the other task. Whichever
 * task sees the count reached first ends the timing, so exactly `iterations` switches are timed;
 * the other leaves the loop when its exit resumes it (kernel.c task_exit). */
static volatile uint64_t ctx_ops;
static volatile int ctx_started, ctx_ended;

static void ctx_loop(op_fn op)
{
	struct guest_result *r = RESULT;
	uint64_t n = g.params.iterations, units = g.inject_units;

	(void)op;
	if (!ctx_started) {
		ctx_started = 1;
		phase_mark(PHASE_LOOP_BEGIN);
		r->tsc_begin = tsc_read();
	}
	while (ctx_ops < n) {
		ctx_ops = ctx_ops + 1;
		inject_delay(units);
		user_syscall(SYS_YIELD);
	}
	if (ctx_ended)
		return;
	ctx_ended = 1;
	r->tsc_end = tsc_read();
	phase_mark(PHASE_LOOP_END);
	r->ops = ctx_ops;
}

/* What a ring-3 task runs: the selected loop, then back to the kernel with its SSP (the after-loop
 * check compares it with its shadow stack's top). */
static void user_body(void)
{
	selected->run(selected_op);
	user_exit();
}

static op_fn setup_ctxswitch(op_fn op)
{
	task_prepare(1, user_body);
	return op;
}

#define ROW(id_, name_, ring_, exit_, setup_, op_, run_, what_) { id_, ring_, setup_, op_, run_ },
static const struct workload workloads[] = { GUEST_WORKLOADS(ROW) };
#undef ROW

/* The CET_USER component now: init (U_CET and PL3_SSP both 0), else off (live registers, but not
 * in the guest's IA32_XSS, so the guest's own XSAVES leaves them alone), else live. KVM saves the
 * guest with the host's XSS, so for a VM exit only init vs not init matters. */
static uint32_t cetu_state(void)
{
	if (!(g.cpuid.c7_ecx & CPUID7_ECX_SHSTK))
		return CETU_INIT;  /* no CET MSRs: the component is architecturally in its init state */
	if (!(rdmsr(MSR_IA32_U_CET) | rdmsr(MSR_IA32_PL3_SSP)))
		return CETU_INIT;
	if (g.setup.save_method != SAVE_XSAVES || !(rdmsr(MSR_IA32_XSS) & XSS_CET_U))
		return CETU_OFF;
	return CETU_LIVE;
}

/* A ring-0 loop with cetu=init: U_CET and PL3_SSP are 0 while it runs, and come back after it, so
 * the after-loop checks see the configuration unchanged. */
static void run_ring0(void)
{
	uint64_t u_cet = 0, pl3_ssp = 0;
	int init = g.params.cetu == CETU_INIT;

	if (init) {
		u_cet = rdmsr(MSR_IA32_U_CET);
		pl3_ssp = rdmsr(MSR_IA32_PL3_SSP);
		wrmsr(MSR_IA32_U_CET, 0);
		wrmsr(MSR_IA32_PL3_SSP, 0);
	}
	RESULT->cetu_state = cetu_state();
	selected->run(selected_op);
	if (init) {
		wrmsr(MSR_IA32_U_CET, u_cet);
		wrmsr(MSR_IA32_PL3_SSP, pl3_ssp);
	}
}

int workload_run(void)
{
	for (unsigned i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++)
		if (workloads[i].id == g.params.workload)
			selected = &workloads[i];
	if (!selected)
		guest_fail(GUEST_STATUS_BAD_PARAMS, "params.workload is not a known workload id");
	if (selected->ring == 3 && g.params.cetu == CETU_INIT)
		guest_fail(GUEST_STATUS_BAD_PARAMS, "params: cetu=init is for ring-0 loops (a ring-3 task needs its shadow stack)");
	if (selected->ring == 3)
		task_prepare(0, user_body);  /* before setup: ctxswitch prepares task 1 after it */
	selected_op = selected->setup(selected->op);
	if (selected->ring == 0) {
		run_ring0();
	} else {
		RESULT->cetu_state = cetu_state();
		run_task(0);
	}
	return selected->ring;
}
