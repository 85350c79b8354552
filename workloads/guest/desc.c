/* The guest's own GDT (ring 0/3 code and data, a 64-bit TSS), IDT and SYSCALL MSRs. */
#include "guest.h"

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
};

struct __attribute__((packed)) idt_gate {
	uint16_t offset0, selector;
	uint8_t ist, type_attr;
	uint16_t offset1;
	uint32_t offset2, reserved;
};

struct __attribute__((packed)) table_reg {
	uint16_t limit;
	uint64_t base;
};

extern char ist1_stack_top[];

static uint64_t gdt[8] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[32] __attribute__((aligned(16)));

/* Flat descriptors (SDM vol. 3A, 3.4.5): G, D/B or L, P, DPL, S, type. */
#define DESC_KCODE64 0x00AF9A000000FFFFull
#define DESC_KDATA   0x00CF92000000FFFFull
#define DESC_UCODE32 0x00CFFA000000FFFFull
#define DESC_UDATA   0x00CFF2000000FFFFull
#define DESC_UCODE64 0x00AFFA000000FFFFull
#define GATE_INTR_DPL0 0x8E  /* present, DPL 0, 64-bit interrupt gate */
#define TSS_AVAILABLE  0x89  /* present, DPL 0, available 64-bit TSS */

static void gdt_install(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;
	struct table_reg r = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };

	gdt[GUEST_SEL_KCODE / 8] = DESC_KCODE64;
	gdt[GUEST_SEL_KDATA / 8] = DESC_KDATA;
	gdt[GUEST_SEL_UCODE32 / 8] = DESC_UCODE32;
	gdt[GUEST_SEL_UDATA / 8] = DESC_UDATA;
	gdt[GUEST_SEL_UCODE / 8] = DESC_UCODE64;
	gdt[GUEST_SEL_TSS / 8] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) |
				 ((uint64_t)TSS_AVAILABLE << 40) | (((base >> 24) & 0xFF) << 56);
	gdt[GUEST_SEL_TSS / 8 + 1] = base >> 32;

	tss.rsp[0] = (uint64_t)(uintptr_t)ist1_stack_top;
	tss.ist[0] = (uint64_t)(uintptr_t)ist1_stack_top;
	tss.iomap_base = sizeof(tss);  /* no I/O bitmap: ring 3 port access is decided by IOPL */

	__asm__ volatile("lgdt %0" : : "m"(r));
	/* Reload CS with a far return, then the data segments and TR. */
	__asm__ volatile("pushq %[cs]\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %[ds], %%eax\n\t"
			 "mov %%eax, %%ds\n\t"
			 "mov %%eax, %%es\n\t"
			 "mov %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "mov %%eax, %%fs\n\t"
			 "mov %%eax, %%gs\n\t"
			 "movw %[tr], %%ax\n\t"
			 "ltr %%ax"
			 :
			 : [cs] "i"(GUEST_SEL_KCODE), [ds] "i"(GUEST_SEL_KDATA), [tr] "i"(GUEST_SEL_TSS)
			 : "rax", "memory");
}

static void idt_install(void)
{
	struct table_reg r = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	for (int v = 0; v < 32; v++) {
		uint64_t off = exc_stub_table[v];
		idt[v].offset0 = off & 0xFFFF;
		idt[v].selector = GUEST_SEL_KCODE;
		idt[v].ist = 1;  /* a known-good stack whatever faulted */
		idt[v].type_attr = GATE_INTR_DPL0;
		idt[v].offset1 = (off >> 16) & 0xFFFF;
		idt[v].offset2 = off >> 32;
		idt[v].reserved = 0;
	}
	__asm__ volatile("lidt %0" : : "m"(r));
}

void desc_install(void)
{
	gdt_install();
	idt_install();
	wrmsr(MSR_STAR, GUEST_STAR);
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
	wrmsr(MSR_SYSCALL_MASK, GUEST_SFMASK);
}
