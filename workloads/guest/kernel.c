/* The guest kernel's task side: ring-3 tasks, system calls, the context switch, and exception
 * reports. A task switch does what Linux's does for user state: the SYSCALL entry has saved the
 * task's registers; the kernel saves its state components (FXSAVE/XSAVE*; with XSAVES and
 * IA32_XSS.CET_U that includes U_CET and PL3_SSP, i.e. the task's shadow-stack pointer), restores
 * the other task's, and SYSRET resumes it (SSP <- IA32_PL3_SSP when user shadow stacks are on). */
#include "guest.h"

enum task_state { TASK_UNUSED = 0, TASK_READY = 1, TASK_EXITED = 2 };

struct task {
	struct user_frame frame;  /* where SYSRET resumes the task */
	uint64_t pl3_ssp;         /* its SSP while switched out, when CET_U is switched by MSR */
	void *xarea;              /* its state-save area */
	int state;                /* enum task_state */
	uint64_t exit_ssp;        /* its RDSSP at SYS_EXIT (R12, user_exit()) */
};

static struct task tasks[GUEST_TASKS];
static int current, last_exited = -1;

/* Task t will start in user_task_start, which calls fn on the task's own stacks. */
void task_prepare(int t, void (*fn)(void))
{
	struct task *k = &tasks[t];

	memset(&k->frame, 0, sizeof(k->frame));
	k->frame.rip = (uint64_t)(uintptr_t)user_task_start;
	k->frame.rsp = GUEST_USER_STACK_TOP(t);
	k->frame.rbx = (uint64_t)(uintptr_t)fn;
	k->frame.rflags = GUEST_USER_RFLAGS;
	k->pl3_ssp = g.setup.pl3_ssp[t];
	k->xarea = (void *)(uintptr_t)GUEST_XAREA_GPA(t);
	k->state = TASK_READY;
	k->exit_ssp = 0;
	memset(k->xarea, 0, GUEST_XAREA_BYTES);  /* XRSTOR needs a clean header */
	/* The task's initial state image: the live state, with its own PL3_SSP when XSAVES holds it. */
	if (g.setup.cet_u_switch == CET_U_SWITCH_XSAVES)
		wrmsr(MSR_IA32_PL3_SSP, k->pl3_ssp);
	fpu_save(k->xarea);
}

void run_task(int t)
{
	struct task *k = &tasks[t];

	current = t;
	fpu_restore(k->xarea);
	if (g.setup.cet_u_switch != CET_U_SWITCH_NONE)
		wrmsr(MSR_IA32_PL3_SSP, k->pl3_ssp);  /* also set by XRSTORS; explicit for clarity */
	syscall_frame = k->frame;
	enter_user();
}

int task_exit_ssp(int t, uint64_t *ssp)
{
	*ssp = tasks[t].exit_ssp;
	return tasks[t].state == TASK_EXITED;
}

int task_last_exited(void)
{
	return last_exited;
}

static void context_switch(struct user_frame *f)
{
	struct task *prev = &tasks[current], *next = &tasks[current ^ 1];

	if (next->state != TASK_READY)
		guest_fail(GUEST_STATUS_BAD_PARAMS, "context switch to a task that is not ready");

	prev->frame = *f;
	fpu_save(prev->xarea);
	if (g.setup.cet_u_switch == CET_U_SWITCH_MSR) {
		prev->pl3_ssp = rdmsr(MSR_IA32_PL3_SSP);
		wrmsr(MSR_IA32_PL3_SSP, next->pl3_ssp);
	}
	fpu_restore(next->xarea);
	*f = next->frame;
	current ^= 1;
}

/* SYS_EXIT: record the task's SSP; if the other task is still ready (ctxswitch: it is parked in its
 * last yield), run it to its own exit, so every task reports its SSP after the loop. */
static long task_exit(struct user_frame *f)
{
	tasks[current].exit_ssp = f->r12;
	tasks[current].state = TASK_EXITED;
	last_exited = current;
	if (tasks[current ^ 1].state != TASK_READY)
		return 1;
	context_switch(f);
	return 0;
}

/* GW_TEST_CET_LOST: turn off what the configuration turned on, as a buggy kernel path might. */
static void test_cet_off(void)
{
	if (g.params.workload != GW_TEST_CET_LOST)
		guest_fail(GUEST_STATUS_BAD_PARAMS, "SYS_TEST_CET_OFF outside GW_TEST_CET_LOST");
	if (g.setup.cet & GUEST_CET_SHSTK)
		wrmsr(MSR_IA32_U_CET, rdmsr(MSR_IA32_U_CET) & ~CET_SHSTK_EN);
	if (g.setup.cet & GUEST_CET_IBT)
		wrmsr(MSR_IA32_S_CET, rdmsr(MSR_IA32_S_CET) & ~CET_ENDBR_EN);
}

/* Called by syscall_entry with the task's frame: 0 resumes *f in ring 3, 1 returns to the kernel
 * (enter_user's caller). */
long syscall_dispatch(struct user_frame *f)
{
	switch (f->nr) {
	case SYS_NOP:
		return 0;
	case SYS_YIELD:
		context_switch(f);
		return 0;
	case SYS_EXIT:
		return task_exit(f);
	case SYS_TEST_CET_OFF:
		test_cet_off();
		return 0;
	}
	guest_fail(GUEST_STATUS_BAD_PARAMS, "unknown guest system call");
}

static void hex_into(char *buf, uint64_t v)
{
	buf[0] = '0';
	buf[1] = 'x';
	for (int i = 0; i < 16; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
	buf[18] = 0;
}

/* Every exception ends the run: record it for the loader (entry.S exc_common calls this). */
void guest_exception(uint64_t vector, uint64_t error_code, uint64_t rip, uint64_t cs)
{
	struct guest_result *r = RESULT;
	char cr2[19];

	r->vector = vector;
	r->error_code = error_code;
	r->fault_rip = rip;
	hex_into(cr2, READ_CR(2));
	set_detail((cs & 3) ? "exception in ring 3, cr2=" : "exception in ring 0, cr2=", cr2);
	r->status = GUEST_STATUS_EXCEPTION;
	guest_finish();
}
