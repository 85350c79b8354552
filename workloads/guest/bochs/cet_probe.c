/* Test-only guest: asks the emulated CPU (bochs `tigerlake`) which CET pieces it really implements.
 *
 * Independent of the cetbench guest, so that when a CET-on guest run fails under bochs we can tell
 * "bochs lacks X" from "the guest gets X wrong". Booted by boot.S like any guest; params.workload is a
 * PROBE_* id. Prints one `probe <step> ...` line per step to port 0xE9, then `CETBENCH-PROBE-END` and
 * shuts bochs down. An exception ends the run with `probe exception vector=.. error_code=.. rip=..`
 * unless the faulting instruction was one wrapped in TRY() (then the step reports the fault and the
 * probe goes on). Encodings: native/cet_arch.h (SDM vol. 3A CET chapter).
 */
#include <stdint.h>
#include "guest/abi.h"
#include "native/cet_arch.h"

enum probe_id {
	PROBE_REGS = 1,        /* CR4.CET, CET MSRs, IA32_XSS bits, XSAVES/XRSTORS of CET_U */
	PROBE_IBT = 2,         /* S_CET.ENDBR_EN: indirect call to ENDBR64 ok, then jmp without it: #CP(3) */
	PROBE_SSS = 3,         /* supervisor shadow stack: token, SETSSBSY, CALL/RET, RDSSP, INCSSP, WRSS */
	PROBE_SSS_CP = 4,      /* ... then a corrupted return address: #CP(1) */
	PROBE_USER = 5,        /* ring 3 with U_CET.SH_STK_EN: CALL/RET, SYSCALL/SYSRET keep SSP */
	PROBE_USER_CP = 6,     /* ... then a corrupted return address in ring 3: #CP(1) */
	PROBE_USER_IBT_CP = 7, /* U_CET.ENDBR_EN: ring-3 indirect jmp without ENDBR64: #CP(3) */
};

#define SS_REGION   0x600000ull   /* 2 MiB region remapped with 4 KiB pages for shadow stacks */
#define SSS_PAGE    (SS_REGION)           /* supervisor shadow stack page (R/W=0, D=1, U/S=0) */
#define USS_PAGE    (SS_REGION + 0x1000)  /* user shadow stack page (R/W=0, D=1, U/S=1) */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x18
#define SEL_UCODE 0x20
#define SEL_TSS   0x28

static volatile struct guest_params *const params = (void *)(uintptr_t)GUEST_PARAMS_GPA;

/* ---- output to port 0xE9, end of run via bochs's shutdown port ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static void puts_(const char *s) { while (*s) outb(0xE9, (uint8_t)*s++); }
static void puthex(uint64_t v)
{
	char buf[19];
	int i = 18;
	buf[i] = 0;
	do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	puts_(buf + i);
}
static void kv(const char *k, uint64_t v) { puts_(" "); puts_(k); puts_("="); puthex(v); }
static __attribute__((noreturn)) void finish(void)
{
	puts_("\nCETBENCH-PROBE-END\n");
	for (const char *s = "Shutdown"; *s; s++) outb(0x8900, (uint8_t)*s);
	for (;;) __asm__ volatile("hlt");
}

/* ---- TRY(): run one instruction; a fault in it is recorded and execution resumes after it ---- */
struct fixup { uint64_t insn, resume; };
extern const struct fixup __start_probe_fixup[], __stop_probe_fixup[];
static volatile uint64_t fault_vector, fault_error;
#define TRY(insn, ...) \
	__asm__ volatile("1: " insn "\n2:\n.pushsection probe_fixup,\"a\"\n.quad 1b, 2b\n.popsection" __VA_ARGS__)

static int tried_ok(void) { return fault_vector == ~0ull; }
static void try_begin(void) { fault_vector = ~0ull; fault_error = 0; }
static void report_try(void)
{
	if (tried_ok()) puts_(" ok");
	else { puts_(" fault"); kv("vector", fault_vector); kv("error_code", fault_error); }
}

static uint64_t rdmsr_try(uint32_t msr)
{
	uint32_t lo = 0, hi = 0;
	try_begin();
	TRY("rdmsr", : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static void wrmsr_try(uint32_t msr, uint64_t v)
{
	try_begin();
	TRY("wrmsr", : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void write_cr4_try(uint64_t v) { try_begin(); TRY("mov %0, %%cr4", : : "r"(v)); }
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static uint64_t rdssp(void) { uint64_t v = 0; __asm__ volatile("rdsspq %0" : "+r"(v)); return v; }

/* ---- descriptor tables: ring-0/ring-3 segments, a TSS for ring 3 -> 0 events, 32 vectors ---- */
struct __attribute__((packed)) tss64 { uint32_t r0; uint64_t rsp[3]; uint64_t r1; uint64_t ist[7]; uint64_t r2; uint16_t r3, iomap; };
static struct tss64 tss __attribute__((aligned(16)));
static uint64_t gdt[7] __attribute__((aligned(16)));
static uint64_t idt[64] __attribute__((aligned(16)));
static uint8_t kstack[16384] __attribute__((aligned(16)));
static uint8_t ustack[8192] __attribute__((aligned(16)));
static uint64_t ss_pt[512] __attribute__((aligned(4096)));
extern char vector_stubs[];  /* 32 stubs of 16 bytes each, below */

struct frame { uint64_t vector, error, rip, cs, rflags, rsp, ss; };

void probe_exception(struct frame *f)
{
	for (const struct fixup *x = __start_probe_fixup; x < __stop_probe_fixup; x++) {
		if (x->insn == f->rip) {
			fault_vector = f->vector;
			fault_error = f->error;
			f->rip = x->resume;
			return;
		}
	}
	puts_("\nprobe exception");
	kv("vector", f->vector);
	kv("error_code", f->error);
	kv("rip", f->rip);
	kv("cs", f->cs);
	kv("ssp", read_cr4() & CR4_CET ? rdssp() : 0);
	finish();
}

/* Each stub: ENDBR64 (an IDT target is an indirect branch target under IBT), a dummy error code
 * where the CPU pushes none, the vector, then the common path. */
__asm__(
	".text\n.p2align 4\nvector_stubs:\n"
	".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	".p2align 4\nendbr64\n"
	".if (\\v==8)||(\\v==10)||(\\v==11)||(\\v==12)||(\\v==13)||(\\v==14)||(\\v==17)||(\\v==21)\n"
	"pushq $\\v\n.else\npushq $0\npushq $\\v\n.endif\n"
	"jmp vector_common\n.endr\n"
	"vector_common:\n"
	"push %rax; push %rcx; push %rdx; push %rsi; push %rdi; push %r8; push %r9; push %r10; push %r11\n"
	"lea 72(%rsp), %rdi\ncall probe_exception\n"
	"pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"add $16, %rsp\niretq\n");

static void setup_tables(void)
{
	gdt[1] = 0x00209A0000000000ull;             /* kernel code 64 */
	gdt[2] = 0x00CF92000000FFFFull;             /* kernel data */
	gdt[3] = 0x00CFF2000000FFFFull;             /* user data (DPL 3) */
	gdt[4] = 0x0020FA0000000000ull;             /* user code 64 (DPL 3) */
	uint64_t t = (uint64_t)(uintptr_t)&tss;
	gdt[5] = (sizeof(tss) - 1) | ((t & 0xFFFFFF) << 16) | (0x89ull << 40) | (((t >> 24) & 0xFF) << 56);
	gdt[6] = t >> 32;
	tss.rsp[0] = (uint64_t)(uintptr_t)(kstack + sizeof(kstack));
	tss.iomap = sizeof(tss);
	for (int v = 0; v < 32; v++) {
		uint64_t h = (uint64_t)(uintptr_t)(vector_stubs + 16 * v);
		idt[2 * v] = (h & 0xFFFF) | ((uint64_t)SEL_KCODE << 16) | (0x8Eull << 40) | (((h >> 16) & 0xFFFF) << 48);
		idt[2 * v + 1] = h >> 32;
	}
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } g = { sizeof(gdt) - 1, (uintptr_t)gdt },
		i = { sizeof(idt) - 1, (uintptr_t)idt };
	__asm__ volatile("lgdt %0\nlidt %1\n"
			 "pushq $0x08\nlea 1f(%%rip), %%rax\npushq %%rax\nlretq\n1:\n"
			 "mov $0x10, %%ax\nmov %%ax, %%ds\nmov %%ax, %%es\nmov %%ax, %%ss\n"
			 "mov $0x28, %%ax\nltr %%ax" ::"m"(g), "m"(i) : "rax", "memory");
}

/* Remap SS_REGION with 4 KiB pages: one supervisor and one user shadow-stack page, rest as before. */
static void setup_shadow_stack_pages(void)
{
	for (int n = 0; n < 512; n++)
		ss_pt[n] = (SS_REGION + 0x1000ull * n) | PTE_P | PTE_RW | PTE_US;
	ss_pt[0] = SSS_PAGE | PTE_P | PTE_A | PTE_D;             /* shadow stack: R/W=0 and D=1 */
	ss_pt[1] = USS_PAGE | PTE_P | PTE_US | PTE_A | PTE_D;
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	const uint64_t addr = PTE_ADDR_MASK;
	volatile uint64_t *pml4 = (uint64_t *)(uintptr_t)(cr3 & addr);
	volatile uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & addr);
	volatile uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[0] & addr);
	pd[SS_REGION >> 21] = (uint64_t)(uintptr_t)ss_pt | PTE_P | PTE_RW | PTE_US;
	__asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

static void enable_cr4_cet(void)
{
	write_cr4_try(read_cr4() | CR4_CET);
	puts_("\nprobe cr4.cet");
	report_try();
	kv("cr4", read_cr4());
}

/* ---- PROBE_REGS ---- */
static void msr_step(const char *name, uint32_t msr, uint64_t value)
{
	puts_("\nprobe wrmsr.");
	puts_(name);
	wrmsr_try(msr, value);
	report_try();
	kv("value", value);
	uint64_t back = rdmsr_try(msr);
	kv("rdmsr_ok", tried_ok());
	kv("readback", back);
}

static uint8_t xsave_area[4096] __attribute__((aligned(64)));

static void probe_regs(void)
{
	uint32_t r[4];
	cpuid(7, 0, r);
	puts_("\nprobe cpuid7");
	kv("ecx", r[2]);
	kv("edx", r[3]);
	cpuid(0xD, 1, r);
	puts_("\nprobe cpuid_d1");
	kv("eax", r[0]);
	kv("ebx", r[1]);
	kv("ecx", r[2]);
	kv("edx", r[3]);
	for (uint32_t sub = 11; sub <= 12; sub++) {
		cpuid(0xD, sub, r);
		puts_("\nprobe cpuid_d");
		kv("subleaf", sub);
		kv("eax", r[0]);
		kv("ecx", r[2]);
	}
	enable_cr4_cet();
	msr_step("s_cet", MSR_IA32_S_CET, CET_ENDBR_EN);
	msr_step("s_cet", MSR_IA32_S_CET, 0);
	msr_step("u_cet", MSR_IA32_U_CET, CET_SHSTK_EN | CET_ENDBR_EN);
	msr_step("pl0_ssp", MSR_IA32_PL0_SSP, SSS_PAGE + 0xFF8);
	msr_step("pl3_ssp", MSR_IA32_PL3_SSP, USS_PAGE + 0x1000);
	msr_step("int_ssp_tab", MSR_IA32_INT_SSP_TAB, 0x9000);
	msr_step("xss", MSR_IA32_XSS, XSS_CET_U);
	msr_step("xss", MSR_IA32_XSS, XSS_CET_S);
	msr_step("xss", MSR_IA32_XSS, XSS_CET_U | XSS_CET_S);
	msr_step("xss", MSR_IA32_XSS, XSS_CET_U);

	/* XSAVES/XRSTORS of CET_U (component 11: U_CET then PL3_SSP, compacted right after the header). */
	write_cr4_try(read_cr4() | CR4_OSXSAVE);
	try_begin();
	TRY("xsetbv", : : "c"(0), "a"(3), "d"(0));
	puts_("\nprobe xsetbv xcr0=0x3");
	report_try();
	try_begin();
	TRY("xsaves64 (%0)", : : "r"(xsave_area), "a"(0x803), "d"(0) : "memory");
	uint64_t *q = (uint64_t *)xsave_area;
	puts_("\nprobe xsaves rfbm=0x803");
	report_try();
	kv("xstate_bv", q[64]);
	kv("xcomp_bv", q[65]);
	kv("cet_u.u_cet", q[72]);
	kv("cet_u.pl3_ssp", q[73]);
	q[72] = CET_ENDBR_EN;
	q[73] = USS_PAGE + 0xFF0;
	q[64] |= XSS_CET_U;
	try_begin();
	TRY("xrstors64 (%0)", : : "r"(xsave_area), "a"(0x800), "d"(0) : "memory");
	puts_("\nprobe xrstors rfbm=0x800");
	report_try();
	kv("u_cet", rdmsr_try(MSR_IA32_U_CET));
	kv("pl3_ssp", rdmsr_try(MSR_IA32_PL3_SSP));

	/* Same XSAVES with CET_U in its init state (U_CET = PL3_SSP = 0): XSTATE_BV[11] must be 0. */
	wrmsr(MSR_IA32_U_CET, 0);
	wrmsr(MSR_IA32_PL3_SSP, 0);
	for (unsigned n = 0; n < sizeof(xsave_area); n++) xsave_area[n] = 0;
	try_begin();
	TRY("xsaves64 (%0)", : : "r"(xsave_area), "a"(0x803), "d"(0) : "memory");
	puts_("\nprobe xsaves_init_cet_u rfbm=0x803");
	report_try();
	kv("xstate_bv", q[64]);
	kv("xcomp_bv", q[65]);
}

/* ---- PROBE_IBT: kernel IBT (S_CET.ENDBR_EN) ---- */
__attribute__((noinline)) static int ibt_target(int x) { return x + 1; } /* has ENDBR64 (-fcf-protection) */
extern char no_endbr_target[];
__asm__(".text\nno_endbr_target:\n nop\n ud2\n");

static void probe_ibt(void)
{
	enable_cr4_cet();
	wrmsr(MSR_IA32_S_CET, CET_ENDBR_EN);
	int (*volatile fn)(int) = ibt_target;
	int y = fn(41);
	puts_("\nprobe ibt.call_endbr ok");
	kv("result", (uint64_t)y);
	kv("s_cet", rdmsr_try(MSR_IA32_S_CET));
	puts_("\nprobe ibt.jmp_no_endbr expect=#CP(3)");
	void *volatile target = no_endbr_target;
	__asm__ volatile("jmp *%0" ::"r"(target));
}

/* ---- PROBE_SSS / PROBE_SSS_CP: supervisor shadow stack at CPL 0 ---- */
__attribute__((noinline)) static uint64_t ssp_in_callee(void) { return rdssp(); }
__attribute__((noinline, naked)) static void smash_return(void)
{
	/* overwrite our own return address on the data stack: the shadow copy disagrees -> #CP(1) */
	__asm__ volatile("endbr64\nlea no_endbr_target(%rip), %rax\nmov %rax, (%rsp)\nret\n");
}

static __attribute__((noreturn)) void probe_sss(int corrupt)
{
	uint64_t token = SSS_PAGE + 0xFF8;
	*(volatile uint64_t *)(uintptr_t)token = token; /* supervisor token: own address, not busy */
	setup_shadow_stack_pages();
	enable_cr4_cet();
	wrmsr(MSR_IA32_S_CET, CET_SHSTK_EN | CET_WRSS_EN);
	wrmsr(MSR_IA32_PL0_SSP, token);
	try_begin();
	TRY("setssbsy");
	puts_("\nprobe setssbsy");
	report_try();
	kv("ssp", rdssp());
	kv("token", *(volatile uint64_t *)(uintptr_t)token);
	/* From here on this frame must never return: the shadow stack has no entry for it. */
	uint64_t in = ssp_in_callee();
	puts_("\nprobe sss.call_ret ok");
	kv("ssp_in_callee", in);
	kv("ssp_after", rdssp());
	uint64_t before = rdssp();
	try_begin();
	TRY("incsspq %0", : : "r"(1ull));
	puts_("\nprobe incssp");
	report_try();
	kv("delta", rdssp() - before);
	uint64_t slot = SSS_PAGE + 0x100, val = 0x1234;
	try_begin();
	TRY("wrssq %0, (%1)", : : "r"(val), "r"(slot) : "memory");
	puts_("\nprobe wrss");
	report_try();
	kv("read", *(volatile uint64_t *)(uintptr_t)slot);
	/* Switch to a second shadow stack and back like a kernel would: RSTORSSP to a restore token
	 * (written with WRSS), SAVEPREVSSP leaves a restore token on the old stack, RSTORSSP back, and
	 * INCSSP drops the previous-SSP token that the second RSTORSSP left. */
	uint64_t old_ssp = rdssp(), tok_addr = SSS_PAGE + 0x7F8, tok = (tok_addr + 8) | 1;
	uint64_t mid = 0, after_save = 0, back = 0;
	try_begin();
	TRY("wrssq %0, (%1)", : : "r"(tok), "r"(tok_addr) : "memory");
	__asm__ volatile("rstorssp (%[t])\nrdsspq %[mid]\nsaveprevssp\nrdsspq %[after]\n"
			 "lea -8(%[old]), %%rax\nrstorssp (%%rax)\nincsspq %[one]\nrdsspq %[back]\n"
			 : [mid] "+r"(mid), [after] "+r"(after_save), [back] "+r"(back)
			 : [t] "r"(tok_addr), [old] "r"(old_ssp), [one] "r"(1ull)
			 : "rax", "memory");
	puts_("\nprobe rstorssp_saveprevssp ok");
	kv("old_ssp", old_ssp);
	kv("ssp_on_second_stack", mid);
	kv("ssp_after_saveprevssp", after_save);
	kv("ssp_back", back);
	kv("ssp_in_callee", ssp_in_callee());

	/* Last steps: a fault here ends the run (an IRET to another RIP would itself fail the
	 * shadow-stack check of IRET, so TRY() cannot resume at CPL 0 with a shadow stack on). */
	if (corrupt) {
		puts_("\nprobe sss.corrupt_ret expect=#CP(1)");
		smash_return();
		puts_("\nprobe sss.corrupt_ret no_fault");
	} else {
		puts_("\nprobe sss.plain_write expect=#PF");
		*(volatile uint64_t *)(uintptr_t)slot = 1;
		puts_("\nprobe sss.plain_write no_fault");
	}
	finish();
}

/* ---- PROBE_USER*: ring 3 with a user shadow stack, SYSCALL/SYSRET ---- */
static volatile uint64_t user_syscalls, user_ssp_at_syscall, pl3_ssp_at_syscall, kernel_ssp_at_syscall;
static __attribute__((used)) uint64_t saved_user_rsp;
static int user_mode_probe;
extern char syscall_entry[];
void syscall_c(uint64_t code, uint64_t arg)
{
	user_syscalls++;
	pl3_ssp_at_syscall = rdmsr_try(MSR_IA32_PL3_SSP);
	kernel_ssp_at_syscall = rdssp();
	if (code == 1) {
		puts_("\nprobe user.syscall");
		kv("user_ssp", arg);
		kv("pl3_ssp_in_kernel", pl3_ssp_at_syscall);
		kv("kernel_ssp", kernel_ssp_at_syscall);
	} else {
		puts_("\nprobe user.done");
		kv("user_ssp", arg);
		kv("syscalls", user_syscalls);
		finish();
	}
}
__asm__(".text\nsyscall_entry:\nendbr64\n"
	"mov %rsp, saved_user_rsp(%rip)\nlea kstack+16384(%rip), %rsp\n"
	"push %rcx\npush %r11\ncall syscall_c\npop %r11\npop %rcx\n"
	"mov saved_user_rsp(%rip), %rsp\nsysretq\n");

__attribute__((noinline)) static uint64_t user_callee(void) { return rdssp(); }
static void user_syscall(uint64_t code, uint64_t arg)
{
	__asm__ volatile("syscall" : "+D"(code), "+S"(arg) : : "rcx", "r11", "rax", "rdx", "r8", "r9", "r10", "memory");
}
static __attribute__((noreturn, used)) void user_main(void)
{
	uint64_t in = user_callee();
	user_syscall(1, in);
	in = user_callee();
	user_syscall(1, rdssp());
	if (user_mode_probe == PROBE_USER_CP) {
		puts_("\nprobe user.corrupt_ret expect=#CP(1)");
		smash_return();
	}
	if (user_mode_probe == PROBE_USER_IBT_CP) {
		puts_("\nprobe user.jmp_no_endbr expect=#CP(3)");
		void *volatile target = no_endbr_target;
		__asm__ volatile("jmp *%0" ::"r"(target));
	}
	user_syscall(2, in);
	for (;;) ;
}

static __attribute__((noreturn)) void probe_user(int probe)
{
	user_mode_probe = probe;
	setup_shadow_stack_pages();
	enable_cr4_cet();
	uint64_t u_cet = probe == PROBE_USER_IBT_CP ? CET_ENDBR_EN | CET_SHSTK_EN : CET_SHSTK_EN;
	wrmsr(MSR_IA32_U_CET, u_cet);
	wrmsr(MSR_IA32_PL3_SSP, USS_PAGE + 0x1000);
	wrmsr(MSR_STAR, ((uint64_t)(SEL_UDATA - 8) << 48) | ((uint64_t)SEL_KCODE << 32));
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
	wrmsr(MSR_SYSCALL_MASK, 0x700);
	puts_("\nprobe user.enter");
	kv("u_cet", rdmsr_try(MSR_IA32_U_CET));
	kv("pl3_ssp", rdmsr_try(MSR_IA32_PL3_SSP));
	/* Into ring 3 by SYSRET: RCX = RIP, R11 = RFLAGS; SSP becomes PL3_SSP. */
	register uint64_t rflags __asm__("r11") = 0x3002; /* IOPL 3: ring 3 may print to port 0xE9 */
	__asm__ volatile("mov %0, %%rsp\nsysretq" ::"r"(ustack + sizeof(ustack) - 8), "c"(user_main), "r"(rflags) : "memory");
	__builtin_unreachable();
}

void probe_main(void)
{
	setup_tables();
	puts_("\nprobe start");
	kv("probe", params->workload);
	kv("magic_ok", params->magic == GUEST_PARAMS_MAGIC);
	switch (params->workload) {
	case PROBE_REGS: probe_regs(); break;
	case PROBE_IBT: probe_ibt(); break;
	case PROBE_SSS: probe_sss(0);
	case PROBE_SSS_CP: probe_sss(1);
	case PROBE_USER: case PROBE_USER_CP: case PROBE_USER_IBT_CP: probe_user((int)params->workload);
	default: puts_("\nprobe unknown"); break;
	}
	finish();
}

__asm__(".section .text.entry,\"ax\"\n.globl _start\n_start:\nendbr64\ncall probe_main\n1: hlt\njmp 1b\n");
