/* Test-only stand-in for the cetbench guest: proves the bochs boot path (boot.S) hands over the
 * abi.h boot state. Linked at GUEST_IMAGE_GPA. It reads CPUID 7.0 / 0xD.1, CR0/CR4/EFER, checks
 * the params magic and that struct guest_result was zeroed, prints one CETBENCH-RESULT line (plus
 * stub-only keys echoing the params) to port 0xE9, and shuts bochs down through port 0x8900.
 * It turns no CET feature on: cet_active is always 0.
 */
#define E9               0xE9
#define SHUTDOWN_PORT    0x8900
#define PARAMS           0x7000
#define RESULT           0x8000
#define PARAMS_MAGIC     0x43455442
#define P_MAGIC          0
#define P_WORKLOAD       16
#define P_CET            20
#define P_ITERATIONS     24
#define P_PLATFORM       8
#define RESULT_BYTES     272   /* sizeof(struct guest_result) */

	.code64
	.text
	.globl _start
_start:
	movq %rsp, %r15                 /* boot RSP, echoed as boot_rsp= */
	lea msg_head(%rip), %rsi
	call puts
	/* status: 1 (OK) if the params magic is right, else 4 (BAD_PARAMS) */
	movl $1, %eax
	cmpl $PARAMS_MAGIC, PARAMS+P_MAGIC
	je 1f
	movl $4, %eax
1:	call puthex_dec
	lea msg_mid(%rip), %rsi
	call puts
	movq %cr0, %rax
	call puthex
	lea msg_cr4(%rip), %rsi
	call puts
	movq %cr4, %rax
	call puthex
	lea msg_efer(%rip), %rsi
	call puts
	movl $0xC0000080, %ecx
	rdmsr
	shlq $32, %rdx
	orq %rdx, %rax
	call puthex
	lea msg_zero_cet(%rip), %rsi
	call puts
	movl $7, %eax
	xorl %ecx, %ecx
	cpuid
	movl %edx, %r12d
	movl %ecx, %eax
	call puthex
	lea msg_c7edx(%rip), %rsi
	call puts
	movl %r12d, %eax
	call puthex
	movl $0xD, %eax
	movl $1, %ecx
	cpuid
	movl %ecx, %r12d
	movl %eax, %r13d
	lea msg_d1eax(%rip), %rsi
	call puts                       /* clobbers %rax */
	movl %r13d, %eax
	call puthex
	lea msg_d1ecx(%rip), %rsi
	call puts
	movl %r12d, %eax
	call puthex
	lea msg_workload(%rip), %rsi
	call puts
	movl PARAMS+P_WORKLOAD, %eax
	call puthex
	lea msg_cet(%rip), %rsi
	call puts
	movl PARAMS+P_CET, %eax
	call puthex
	lea msg_iter(%rip), %rsi
	call puts
	movq PARAMS+P_ITERATIONS, %rax
	call puthex
	lea msg_platform(%rip), %rsi
	call puts
	movl PARAMS+P_PLATFORM, %eax
	call puthex
	lea msg_rsp(%rip), %rsi
	call puts
	movq %r15, %rax
	call puthex
	/* result_zero=1 when every byte of struct guest_result is 0 */
	lea msg_rzero(%rip), %rsi
	call puts
	movl $RESULT, %edi
	movl $RESULT_BYTES, %ecx
	xorl %eax, %eax
	repe scasb
	sete %al
	call puthex_dec
	lea msg_tail(%rip), %rsi
	call puts
	lea shutdown(%rip), %rsi
	movw $SHUTDOWN_PORT, %dx
1:	lodsb
	testb %al, %al
	jz 2f
	outb %al, %dx
	jmp 1b
2:	hlt
	jmp 2b

/* puts: NUL-terminated string at %rsi to port 0xE9 */
puts:
	lodsb
	testb %al, %al
	jz 1f
	outb %al, $E9
	jmp puts
1:	ret

/* puthex: "0x" then %rax in hex without leading zeros */
puthex:
	movq %rax, %rbx
	movb $'0', %al
	outb %al, $E9
	movb $'x', %al
	outb %al, $E9
	movq %rbx, %rax
/* puthex_dec: %rax in hex digits only (equals decimal for 0..9) */
puthex_dec:
	movq %rax, %rbx
	movl $60, %ecx
	xorl %r8d, %r8d                 /* 1 once a digit has been printed */
1:	movq %rbx, %rax
	shrq %cl, %rax
	andl $0xF, %eax
	testq %rcx, %rcx
	jz 2f                           /* always print the last digit */
	testl %eax, %eax
	jnz 2f
	testl %r8d, %r8d
	jz 3f
2:	movl $1, %r8d
	lea hexdigits(%rip), %rdx
	movb (%rdx,%rax), %al
	outb %al, $E9
3:	subl $4, %ecx
	jns 1b
	ret

	.section .rodata
hexdigits:   .ascii "0123456789abcdef"
msg_head:    .asciz "\nCETBENCH-RESULT status="
msg_mid:     .asciz " cet_active=0 ops=0 vector=0 error_code=0 fault_rip=0x0 cr0="
msg_cr4:     .asciz " cr4="
msg_efer:    .asciz " efer="
msg_zero_cet: .asciz " xss=0x0 u_cet=0x0 s_cet=0x0 pl3_ssp=0x0 ssp=0x0 cpuid7_ecx="
msg_c7edx:   .asciz " cpuid7_edx="
msg_d1eax:   .asciz " cpuid_d1_eax="
msg_d1ecx:   .asciz " cpuid_d1_ecx="
msg_workload: .asciz " save_method=0 stub_workload="
msg_cet:     .asciz " stub_cet="
msg_iter:    .asciz " stub_iterations="
msg_platform: .asciz " stub_platform="
msg_rsp:     .asciz " stub_boot_rsp="
msg_rzero:   .asciz " stub_result_zero="
msg_tail:    .asciz " detail=\"bochs stub guest\"\n"
shutdown:    .asciz "Shutdown"
