/* The guest workloads, one row each: shared by the guest (which binds the functions) and by
 * cetbench-vmm (which parses --workload and explains the loop). Adding a workload = one row here,
 * its id in abi.h and its functions in workloads.c.
 *
 * X(id, name, ring, exit, setup, op, run, what one op does)
 *   ring:  privilege level the timed loop runs at (0 guest kernel, 3 a guest task)
 *   exit:  what the op costs in VM exits (enum workload_exit)
 *   setup: guest function run once before the loop; returns the op to time (picks VMCALL/VMMCALL
 *          by vendor; an empty op for the VM-exit workloads where there is no hypervisor)
 *   op:    one op (NULL when `run` drives the loop itself)
 *   run:   the timed loop: timed_loop for the plain "op N times" shape
 */
#ifndef CETBENCH_WORKLOAD_LIST_H
#define CETBENCH_WORKLOAD_LIST_H

enum workload_exit {
	WL_EXIT_KERNEL = 1,    /* one VM exit per op, handled inside KVM (no return to userspace) */
	WL_EXIT_USERSPACE = 2, /* one VM exit per op that KVM_RUN returns to the VMM (KVM_EXIT_IO) */
	WL_EXIT_NONE = 3,      /* no VM exit: the op stays inside the guest */
	WL_EXIT_FAULT = 4,     /* test: the op raises an exception the guest reports */
	WL_EXIT_HANG = 5,      /* test: never finishes */
	WL_EXIT_CET_LOST = 6,  /* test: the op turns CET off; the after-loop check must report it */
};

#define GUEST_WORKLOADS(X) \
	X(GW_CPUID, "cpuid", 0, WL_EXIT_KERNEL, setup_vmexit, op_cpuid, timed_loop, \
	  "CPUID leaf 0") \
	X(GW_HYPERCALL, "hypercall", 0, WL_EXIT_KERNEL, setup_hypercall, op_vmcall, timed_loop, \
	  "VMCALL (Intel) / VMMCALL (AMD) with RAX=KVM_HC_VAPIC_POLL_IRQ") \
	X(GW_MSR, "msr", 0, WL_EXIT_KERNEL, setup_vmexit, op_rdmsr, timed_loop, \
	  "RDMSR of params.msr_index (default IA32_APICBASE)") \
	X(GW_PIO, "pio", 0, WL_EXIT_USERSPACE, setup_vmexit, op_out, timed_loop, \
	  "OUT to PORT_OP") \
	X(GW_SYSCALL, "syscall", 3, WL_EXIT_NONE, setup_plain, op_syscall, timed_loop, \
	  "ring 3 SYSCALL -> guest kernel entry (LSTAR) -> SYSRET") \
	X(GW_CTXSWITCH, "ctxswitch", 3, WL_EXIT_NONE, setup_ctxswitch, 0, ctx_loop, \
	  "task SYSCALL yield -> save GPRs + state area (+ CET_U) -> restore the other task -> SYSRET") \
	X(GW_TEST_UD2, "test-ud2", 0, WL_EXIT_FAULT, setup_plain, op_ud2, timed_loop, \
	  "UD2: #UD (vector 6) at ud2_insn") \
	X(GW_TEST_GP, "test-gp", 0, WL_EXIT_FAULT, setup_plain, op_gp, timed_loop, \
	  "load from a non-canonical address: #GP(0) (vector 13) at gp_insn") \
	X(GW_TEST_HANG, "test-hang", 0, WL_EXIT_HANG, setup_plain, op_hang, timed_loop, \
	  "endless loop") \
	X(GW_TEST_CP_RET, "test-cp-ret", 3, WL_EXIT_FAULT, setup_plain, op_cp_ret, timed_loop, \
	  "ring 3 RET to an overwritten return address: #CP(1) at cp_ret_insn with SHSTK") \
	X(GW_TEST_CP_ENDBR, "test-cp-endbr", 0, WL_EXIT_FAULT, setup_plain, op_cp_endbr, timed_loop, \
	  "ring 0 JMP *%rax to a target without ENDBR64: #CP(3) at cp_endbr_target with IBT") \
	X(GW_TEST_CET_LOST, "test-cet-lost", 3, WL_EXIT_CET_LOST, setup_plain, op_cet_lost, timed_loop, \
	  "ring 3 SYSCALL; the kernel clears U_CET.SH_STK_EN (shstk), S_CET.ENDBR_EN (ibt): CET_LOST after the loop")

#endif
