/* cetbench guest: entry point, exception stubs, SYSCALL entry/SYSRET exit and the few instruction
 * sequences the fault tests need at known symbols.
 *
 * IBT: every place reached by an indirect branch or an event starts with ENDBR64 - the exception
 * stubs (IDT), syscall_entry (IA32_LSTAR: SYSCALL arms the ENDBR tracker), user_task_start and the
 * functions C calls through pointers. cp_endbr_target deliberately does not.
 * Shadow stacks are user-only (cet_setup.h): nothing here touches SSP; SYSCALL saves the task's SSP
 * in IA32_PL3_SSP and SYSRET reloads it (SDM SYSCALL/SYSRET operation).
 */
#define FRAME_BYTES 80      /* sizeof(struct user_frame) */

	.section .text.entry, "ax"
	.globl guest_entry
guest_entry:
	cld
	lea __bss_start(%rip), %rdi       /* zero .bss (ends 8-byte aligned: guest.ld) */
	lea __bss_end(%rip), %rcx
	sub %rdi, %rcx
	shr $3, %rcx
	xor %eax, %eax
	rep stosq
	call guest_main                   /* never returns */
1:	cli
	hlt
	jmp 1b

	.text
/* ---- exceptions: every vector 0-31 gets a stub; all run on IST1 (guest_exception never returns) */
.macro EXC_STUB vec, has_err
	.p2align 4
exc_stub_\vec:
	endbr64
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exc_common
.endm

EXC_STUB 0,0;  EXC_STUB 1,0;  EXC_STUB 2,0;  EXC_STUB 3,0;  EXC_STUB 4,0;  EXC_STUB 5,0
EXC_STUB 6,0;  EXC_STUB 7,0;  EXC_STUB 8,1;  EXC_STUB 9,0;  EXC_STUB 10,1; EXC_STUB 11,1
EXC_STUB 12,1; EXC_STUB 13,1; EXC_STUB 14,1; EXC_STUB 15,0; EXC_STUB 16,0; EXC_STUB 17,1
EXC_STUB 18,0; EXC_STUB 19,0; EXC_STUB 20,0; EXC_STUB 21,1; EXC_STUB 22,0; EXC_STUB 23,0
EXC_STUB 24,0; EXC_STUB 25,0; EXC_STUB 26,0; EXC_STUB 27,0; EXC_STUB 28,0; EXC_STUB 29,1
EXC_STUB 30,1; EXC_STUB 31,0

exc_common:
	/* stack: vector, error code, RIP, CS, RFLAGS, RSP, SS */
	mov 0(%rsp), %rdi
	mov 8(%rsp), %rsi
	mov 16(%rsp), %rdx
	mov 24(%rsp), %rcx
	and $-16, %rsp
	call guest_exception
1:	cli
	hlt
	jmp 1b

	.section .rodata
	.globl exc_stub_table
	.p2align 3
exc_stub_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_stub_\v
	.endr

	.text
/* ---- SYSCALL entry: push the task's frame on the syscall stack, let C decide, SYSRET */
	.globl syscall_entry
	.p2align 4
syscall_entry:
	endbr64
	mov %rsp, syscall_user_rsp(%rip)
	lea syscall_frame_end(%rip), %rsp
	pushq syscall_user_rsp(%rip)
	push %rcx
	push %r11
	push %rax
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi                     /* == &syscall_frame */
	call syscall_dispatch              /* 0: resume syscall_frame; else back to the kernel */
	test %rax, %rax
	jnz syscall_to_kernel
syscall_resume:
	lea syscall_frame(%rip), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	add $8, %rsp                       /* nr */
	pop %r11
	pop %rcx
	pop %rsp                           /* user RSP; IF is 0 so nothing can run on it here */
	sysretq
syscall_to_kernel:
	mov kernel_saved_rsp(%rip), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

/* void enter_user(void): run syscall_frame in ring 3; returns when a task makes SYS_EXIT. */
	.globl enter_user
	.p2align 4
enter_user:
	endbr64
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, kernel_saved_rsp(%rip)
	jmp syscall_resume

/* Ring-3 trampoline a task starts at: make the SSE state non-initial (as a real task's is, so the
 * state save has work to do), then call the task function in RBX. Tasks end with SYS_EXIT. */
	.globl user_task_start
	.p2align 4
user_task_start:
	endbr64
	pcmpeqd %xmm0, %xmm0
	pcmpeqd %xmm1, %xmm1
	call *%rbx
	ud2

/* ---- test ops (called from C; symbols name the instruction the fault must point at) */
	.globl test_ud2, ud2_insn
	.p2align 4
test_ud2:
	endbr64
ud2_insn:
	ud2
	ret

	.globl test_gp, gp_insn
	.p2align 4
test_gp:
	endbr64
	movabs $0x8000000000000000, %rax   /* non-canonical with 48- or 57-bit addresses */
gp_insn:
	mov (%rax), %rax
	ret

/* Overwrite our own return address with a landing pad, then RET: with a shadow stack the RET
 * finds a different address there and raises #CP(NEAR-RET); without one it reaches the pad,
 * which leaves the task (the kernel sees the op finished, so the test reports "no #CP"). */
	.globl test_cp_ret, cp_ret_insn
	.p2align 4
test_cp_ret:
	endbr64
	lea cp_ret_landing(%rip), %rax
	mov %rax, (%rsp)
cp_ret_insn:
	ret
cp_ret_landing:
	xor %r12d, %r12d                   /* SSP for SYS_EXIT: none (no shadow stack, as user_exit) */
	mov $2, %eax                       /* SYS_EXIT */
	syscall
	ud2

/* Jump through a register to an instruction that is not ENDBR64: with S_CET.ENDBR_EN the target
 * raises #CP(ENDBRANCH); without IBT it just returns. */
	.globl test_cp_endbr, cp_endbr_target
	.p2align 4
test_cp_endbr:
	endbr64
	lea cp_endbr_target(%rip), %rax
	jmp *%rax
	.p2align 4
cp_endbr_target:
	nop
	ret

/* ---- stacks and the syscall frame (not zeroed: .stacks is NOLOAD and outside .bss) */
	.section .stacks, "aw", @nobits
	.p2align 4
	.globl syscall_frame, ist1_stack_top
	.skip 16384
syscall_frame:
	.skip FRAME_BYTES
syscall_frame_end:
	.p2align 4
	.skip 16384
ist1_stack_top:

	.section .bss
	.p2align 3
syscall_user_rsp:
	.quad 0
kernel_saved_rsp:
	.quad 0
