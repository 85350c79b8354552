/* The VM: one memory slot, one vCPU in the long-mode boot state of guest/abi.h, and the run loop.
 * The loop dispatches on exit reason and port only (no per-exit output) and counts every return
 * of KVM_RUN; PORT_PHASE marks the host-side timing span. */
#define _GNU_SOURCE  /* CLOCK_MONOTONIC_RAW */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "vmm.h"

#define BOOT_GDT_GPA 0x6000u  /* VMM-private: the flat boot GDT (the guest installs its own) */

static void write_page_tables(uint8_t *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + GUEST_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(mem + GUEST_PAGE_TABLES_GPA + 0x1000);
	uint64_t *pd = (uint64_t *)(mem + GUEST_PAGE_TABLES_GPA + 0x2000);
	uint64_t flags = PTE_P | PTE_RW | PTE_US | PTE_A;

	memset(mem + GUEST_PAGE_TABLES_GPA, 0, 0x4000);
	pml4[0] = (GUEST_PAGE_TABLES_GPA + 0x1000) | flags;
	pdpt[0] = (GUEST_PAGE_TABLES_GPA + 0x2000) | flags;
	/* GUEST_IDENTITY_MAP_BYTES = 1 GiB = one page directory of 2 MiB pages */
	for (uint64_t i = 0; i < GUEST_IDENTITY_MAP_BYTES / (2u << 20); i++)
		pd[i] = (i << 21) | flags | PTE_D | PTE_PS;
}

static void write_boot_gdt(uint8_t *mem)
{
	uint64_t *gdt = (uint64_t *)(mem + BOOT_GDT_GPA);
	gdt[0] = 0;
	gdt[1] = 0x00AF9A000000FFFFull;  /* 0x08: 64-bit ring-0 code */
	gdt[2] = 0x00CF92000000FFFFull;  /* 0x10: ring-0 data */
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xFFFFFFFF;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static const char *set_boot_state(struct vm *vm)
{
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sr) < 0)
		return "KVM_GET_SREGS";
	seg(&sr.cs, 0x08, 11, 1);
	seg(&sr.ds, 0x10, 3, 0);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	memset(&sr.tr, 0, sizeof(sr.tr));  /* a busy 64-bit TSS, as VM entry requires */
	sr.tr.limit = 0x67;
	sr.tr.type = 11;
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.type = 2;
	sr.ldt.unusable = 1;
	sr.gdt.base = BOOT_GDT_GPA;
	sr.gdt.limit = 3 * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr0 = GUEST_BOOT_CR0;
	sr.cr3 = GUEST_PML4_GPA;
	sr.cr4 = GUEST_BOOT_CR4;
	sr.efer = GUEST_BOOT_EFER;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sr) < 0)
		return "KVM_SET_SREGS";
	memset(&r, 0, sizeof(r));
	r.rip = GUEST_IMAGE_GPA;
	r.rsp = GUEST_BOOT_STACK_TOP;
	r.rflags = RFLAGS_FIXED;
	if (ioctl(vm->vcpu, KVM_SET_REGS, &r) < 0)
		return "KVM_SET_REGS";
	return NULL;
}

const char *vm_create(struct vm *vm, int kvm_fd, struct kvm_cpuid2 *cpuid, const uint8_t *image,
		      size_t image_len, const struct guest_params *params)
{
	struct kvm_userspace_memory_region slot;
	int sz;

	memset(vm, 0, sizeof(*vm));
	vm->kvm = kvm_fd;
	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return "KVM_CREATE_VM";
	vm->mem = mmap(NULL, GUEST_MEM_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED)
		return "mmap guest memory";
	slot = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM_BYTES,
		.userspace_addr = (uint64_t)(uintptr_t)vm->mem,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return "KVM_SET_USER_MEMORY_REGION";
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		return "KVM_CREATE_VCPU";
	sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return "KVM_GET_VCPU_MMAP_SIZE";
	vm->run_size = (size_t)sz;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		return "mmap kvm_run";
	/* CPUID first: KVM checks CR4/XCR0/MSR writes against the guest CPUID. */
	if (ioctl(vm->vcpu, KVM_SET_CPUID2, cpuid) < 0)
		return "KVM_SET_CPUID2";
	write_page_tables(vm->mem);
	write_boot_gdt(vm->mem);
	memcpy(vm->mem + GUEST_IMAGE_GPA, image, image_len);
	memcpy(vm->mem + GUEST_PARAMS_GPA, params, sizeof(*params));
	memset(vm->mem + GUEST_RESULT_GPA, 0, 0x1000);
	return set_boot_state(vm);
}

const struct guest_result *vm_result(const struct vm *vm)
{
	return (const struct guest_result *)(vm->mem + GUEST_RESULT_GPA);
}

/* ---- run loop ---- */
static volatile sig_atomic_t timed_out;
static struct kvm_run *volatile alarm_run;

/* SIGALRM: make the current or next KVM_RUN return at once (-EINTR) via immediate_exit. */
static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (alarm_run)
		alarm_run->immediate_exit = 1;
}

static void stamp(uint64_t *ns, uint64_t *tsc)
{
	struct timespec ts;
	unsigned aux;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	*tsc = __rdtscp(&aux);
	*ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum run_end on_io(struct kvm_run *run, struct run_stats *st)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	size_t bytes = (size_t)run->io.size * run->io.count;
	int out = run->io.direction == KVM_EXIT_IO_OUT;

	st->all.io++;
	if (out && run->io.port == PORT_OP) {
		st->all.io_op++;
		st->loop.io_op += st->in_loop;
	} else if (out && run->io.port == PORT_PHASE) {
		st->all.io_phase++;
		if (data[0] == PHASE_LOOP_BEGIN && !st->saw_begin) {
			stamp(&st->ns_begin, &st->tsc_begin);
			st->saw_begin = st->in_loop = 1;
		} else if (data[0] == PHASE_LOOP_END && st->in_loop) {
			stamp(&st->ns_end, &st->tsc_end);
			st->in_loop = 0;
			st->saw_end = 1;
		}
	} else if (out && run->io.port == PORT_DONE) {
		st->all.io_done++;
		return RUN_DONE;
	} else if (out && run->io.port == PORT_LOG) {
		st->all.io_log++;
		st->loop.io_other += st->in_loop;
		for (size_t i = 0; i < bytes && st->log_len < sizeof(st->log) - 1; i++)
			st->log[st->log_len++] = (char)data[i];
	} else {
		st->all.io_other++;
		st->loop.io_other += st->in_loop;
		if (!out)
			memset(data, 0xFF, bytes);  /* nothing behind other ports */
	}
	return (enum run_end)-1;
}

/* Where the vCPU stopped: for the failure report. */
static void note_rip(struct vm *vm, struct run_stats *st)
{
	struct kvm_regs r;
	struct kvm_sregs sr;

	if (ioctl(vm->vcpu, KVM_GET_REGS, &r) == 0) {
		st->rip = r.rip;
		st->rip_valid = 1;
	}
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sr) == 0)
		st->cs = sr.cs.selector;
}

static enum run_end run_loop(struct vm *vm, struct run_stats *st, unsigned timeout_s);

enum run_end vm_run(struct vm *vm, struct run_stats *st, unsigned timeout_s)
{
	enum run_end end = run_loop(vm, st, timeout_s);
	if (end != RUN_DONE)
		note_rip(vm, st);
	return end;
}

static enum run_end run_loop(struct vm *vm, struct run_stats *st, unsigned timeout_s)
{
	struct kvm_run *run = vm->run;
	struct sigaction sa;
	enum run_end end;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);  /* no SA_RESTART: KVM_RUN must come back with EINTR */
	alarm_run = run;
	if (timeout_s)
		alarm(timeout_s);
	for (;;) {
		if (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				st->kvm_errno = errno;
				return RUN_KVM_ERROR;
			}
			st->all.intr++;
			st->loop.intr += st->in_loop;
			if (timed_out)
				return RUN_TIMEOUT;
			continue;
		}
		st->last_exit_reason = run->exit_reason;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			end = on_io(run, st);
			if (end != (enum run_end)-1)
				return end;
			break;
		case KVM_EXIT_INTR:
			st->all.intr++;
			st->loop.intr += st->in_loop;
			if (timed_out)
				return RUN_TIMEOUT;
			break;
		case KVM_EXIT_HLT:
			st->all.hlt++;
			return RUN_HLT;
		case KVM_EXIT_MMIO:
			st->all.mmio++;
			st->detail = run->mmio.phys_addr;
			return RUN_MMIO;
		case KVM_EXIT_SHUTDOWN:
			st->all.shutdown++;
			return RUN_SHUTDOWN;
		case KVM_EXIT_INTERNAL_ERROR:
			st->all.internal_error++;
			st->detail = run->internal.suberror;
			st->ndata = run->internal.ndata < 4 ? run->internal.ndata : 4;
			for (uint32_t i = 0; i < st->ndata; i++)
				st->data[i] = run->internal.data[i];
			return RUN_INTERNAL_ERROR;
		case KVM_EXIT_FAIL_ENTRY:
			st->all.fail_entry++;
			st->detail = run->fail_entry.hardware_entry_failure_reason;
			return RUN_FAIL_ENTRY;
		default:
			st->all.other++;
			return RUN_UNKNOWN_EXIT;
		}
	}
}
