/* cetbench bochs boot sector: BIOS (real mode) -> 64-bit long mode -> guest image, in 512 bytes.
 *
 * Puts the machine in the boot state workloads/guest/abi.h specifies, so the guest image the
 * micro-VMM runs on /dev/kvm runs unchanged under bochs. image.py patches the three symbols
 * boot_guest_sectors, boot_guest_bytes and boot_params (found by name in boot.elf) per image.
 * Linked at 0x7C00; assembled by gcc from this one file (.code16 then .code64).
 *
 * Memory used (all clear of abi.h's fixed areas 0x1000-0x5000, 0x7000, 0x8000, 0x200000):
 *   0x7C00        this sector, real-mode stack below it
 *   0x10000...    the guest image as read from the floppy, copied to GUEST_IMAGE_GPA in long mode
 */

#define GUEST_LOAD_SEG      0x1000      /* 0x10000: guest image staging area below 1 MiB */
#define PML4                0x1000      /* GUEST_PML4_GPA */
#define PDPT                0x2000
#define PD                  0x3000
#define PARAMS              0x7000      /* GUEST_PARAMS_GPA */
#define RESULT              0x8000      /* GUEST_RESULT_GPA */
#define STACK_TOP           0x1F0000    /* GUEST_BOOT_STACK_TOP */
#define IMAGE               0x200000    /* GUEST_IMAGE_GPA */
#define PARAMS_BYTES        72          /* sizeof(struct guest_params); checked by the tests */
#define RESULT_BYTES        0x1000      /* >= sizeof(struct guest_result): zero a whole page */
#define PTE_P_RW_US         0x7
#define PDE_2M              0x87        /* P|RW|US|PS */
#define CR0_BOOT            0x80010033  /* PE|MP|ET|NE|WP|PG */
#define CR4_BOOT            0x620       /* PAE|OSFXSR|OSXMMEXCPT */
#define EFER_BOOT_BITS      0x901       /* SCE|LME|NXE; the CPU sets LMA when paging turns on */
#define SECTORS_PER_TRACK   18          /* 1.44 MB floppy geometry */
#define HEADS               2
#define E9                  0xE9        /* bochs port_e9_hack: debug output */

	.code16
	.text
	.globl _start
_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $0x7C00, %sp
	ljmp $0, $1f            /* normalise CS:IP to 0:7Cxx */
1:	movb %dl, boot_drive
	movb $'B', %al
	outb %al, $E9

	/* Read boot_guest_sectors sectors, LBA 1.., one at a time (any BIOS can do that) to 0x10000. */
	movw $GUEST_LOAD_SEG, %ax
	movw %ax, %es
	movw $1, %si            /* LBA */
read_next:
	cmpw boot_guest_sectors, %si
	ja read_done
	movw %si, %ax           /* LBA -> CHS */
	xorw %dx, %dx
	movw $SECTORS_PER_TRACK, %bx
	divw %bx                /* ax = track (LBA / 18), dx = sector index */
	movb %dl, %cl
	incb %cl                /* sector numbers start at 1 */
	xorw %dx, %dx
	movw $HEADS, %bx
	divw %bx                /* ax = cylinder, dx = head */
	movb %al, %ch
	movb %dl, %dh
	movb boot_drive, %dl
	xorw %bx, %bx
	movw $0x0201, %ax       /* read 1 sector to ES:0 */
	int $0x13
	jc disk_error
	movw %es, %ax
	addw $0x20, %ax         /* next 512 bytes */
	movw %ax, %es
	incw %si
	jmp read_next
disk_error:
	movb $'!', %al
	outb %al, $E9
	movb %ah, %al           /* BIOS status code, raw */
	outb %al, $E9
1:	hlt
	jmp 1b

read_done:
	inb $0x92, %al          /* fast A20 gate */
	orb $2, %al
	andb $0xFE, %al
	outb %al, $0x92

	/* Page tables: identity map of the first 1 GiB with 2 MiB pages, user + writable. */
	xorw %ax, %ax
	movw %ax, %es
	movw $PML4, %di
	xorl %eax, %eax
	movw $0x1000, %cx       /* 0x1000 dwords: PML4, PDPT, PD and the spare 4th page */
	cld
	rep stosl
	movl $(PDPT | PTE_P_RW_US), PML4
	movl $(PD | PTE_P_RW_US), PDPT
	movw $PD, %di
	movl $PDE_2M, %eax
	movw $512, %cx
1:	movl %eax, (%di)
	addl $0x200000, %eax
	addw $8, %di
	loop 1b

	lgdtl gdt_desc
	movl $CR4_BOOT, %eax
	movl %eax, %cr4
	movl $PML4, %eax
	movl %eax, %cr3
	movl $0xC0000080, %ecx  /* IA32_EFER */
	rdmsr
	orl $EFER_BOOT_BITS, %eax
	wrmsr
	movl $CR0_BOOT, %eax    /* protection and paging at once: real mode -> long mode */
	movl %eax, %cr0
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movq $(GUEST_LOAD_SEG << 4), %rsi
	movq $IMAGE, %rdi
	movl boot_guest_bytes, %ecx
	rep movsb
	movq $boot_params, %rsi
	movq $PARAMS, %rdi
	movl $PARAMS_BYTES, %ecx
	rep movsb
	movq $RESULT, %rdi
	xorl %eax, %eax
	movl $RESULT_BYTES, %ecx
	rep stosb
	movb $'L', %al          /* "BL\n": the boot sector ran and reached long mode */
	outb %al, $E9
	movb $'\n', %al
	outb %al, $E9
	pushq $2                /* RFLAGS = 0x2: interrupts off */
	popfq
	movq $STACK_TOP, %rsp
	movq $IMAGE, %rax
	jmp *%rax

	.p2align 3
gdt:
	.quad 0                         /* null */
	.quad 0x00209A0000000000        /* 0x08: 64-bit ring-0 code (P, DPL0, L) */
	.quad 0x00CF92000000FFFF        /* 0x10: ring-0 data, flat */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

boot_drive:         .byte 0
	.globl boot_guest_sectors, boot_guest_bytes, boot_params
boot_guest_sectors: .word 0     /* patched: 512-byte sectors after this one */
boot_guest_bytes:   .long 0     /* patched: exact guest image size */
boot_params:        .fill PARAMS_BYTES, 1, 0    /* patched: struct guest_params */

	.org 510
	.byte 0x55, 0xAA
