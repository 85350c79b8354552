/* Guest CPUID: KVM_GET_SUPPORTED_CPUID with the CET bits set or cleared per configuration, and
 * the refusal reasons (in KVM's own terms: the leaf and bit it does not offer). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "vmm.h"

/* Which KVM module serves /dev/kvm (one vendor module is active at a time). */
const char *kvm_module(void)
{
	static const char *const mods[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
	char path[64];
	struct stat sb;

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		if (stat(path, &sb) == 0)
			return mods[i];
	}
	return "unknown";
}

/* kvm_pvm (Pagetable-based VM) runs only PVM-aware guests outside their boot mode: what an
 * architectural guest needs that it does not offer, in its specification's terms; NULL if fine. */
int host_xss(int cpu, uint64_t *value)
{
	char path[64];
	int fd, e;

	snprintf(path, sizeof(path), "/dev/cpu/%d/msr", cpu < 0 ? 0 : cpu);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	e = pread(fd, value, sizeof(*value), MSR_IA32_XSS) == (ssize_t)sizeof(*value) ? 0 : (errno ? errno : EIO);
	close(fd);
	return e;
}

int workload_needs_xsaves(const struct workload_info *wl)
{
	return wl->id == GW_XSAVES || wl->id == GW_XRSTORS;
}

const char *kvm_pvm_refusal(const struct workload_info *wl)
{
	if (wl->id == GW_HYPERCALL)
		return "kvm_pvm does not take VMCALL/VMMCALL as a hypercall: PVM hypercalls are SYSCALL "
		       "in PVM supervisor mode (Documentation/virt/kvm/x86/pvm-spec.rst); the instruction "
		       "is re-emulated without end (no kvm:kvm_hypercall event)";
	if (wl->ring == 3)
		return "kvm_pvm runs ring 3 only for PVM-aware guests: SYSRET is not allowed in PVM "
		       "supervisor mode, a user-mode SYSCALL is delivered through the PVM vCPU struct "
		       "(MSR_PVM_VCPU_STRUCT) and IOPL is forced to 0 in user mode "
		       "(Documentation/virt/kvm/x86/pvm-spec.rst); an architectural guest faults there";
	return NULL;
}

struct kvm_cpuid2 *cpuid_supported(int kvm_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	errno = E2BIG;
	return NULL;
}

struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; c && i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		int indexed = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		if (e->function == fn && (!indexed || e->index == index))
			return e;
	}
	return NULL;
}

int cpuid_vendor(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 0, 0);
	char v[13];

	if (!e)
		return 0;
	memcpy(v, &e->ebx, 4);
	memcpy(v + 4, &e->edx, 4);
	memcpy(v + 8, &e->ecx, 4);
	v[12] = 0;
	if (!strcmp(v, CPUID_VENDOR_INTEL))
		return VENDOR_INTEL;
	if (!strcmp(v, CPUID_VENDOR_AMD))
		return VENDOR_AMD;
	return 0;
}

static uint32_t reg(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index, int which)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, fn, index);
	if (!e)
		return 0;
	return which == 0 ? e->eax : which == 1 ? e->ebx : which == 2 ? e->ecx : e->edx;
}

int cpuid_check_cet(struct kvm_cpuid2 *sup, uint32_t cet, int vendor, char *why, size_t n,
		    const char **refused_by)
{
	uint32_t ecx7 = reg(sup, 7, 0, 2), edx7 = reg(sup, 7, 0, 3);
	uint32_t eaxd1 = reg(sup, 0xD, 1, 0), ecxd1 = reg(sup, 0xD, 1, 2);
	int has_ss = !!(ecx7 & CPUID7_ECX_SHSTK), has_ibt = !!(edx7 & CPUID7_EDX_IBT);
	int cet_u = !!(ecxd1 & CPUIDD1_ECX_XSS_CET_U), cet_s = !!(ecxd1 & CPUIDD1_ECX_XSS_CET_S);
	int xsaves = !!(eaxd1 & CPUIDD1_EAX_XSAVES);
	char rule[200];

	snprintf(rule, sizeof(rule),
		 "KVM offers SHSTK and IBT only when XSAVES and both XSS CET_U and CET_S are supported: "
		 "leaf 0xD.1 EAX[3]=%d ECX[11]=%d ECX[12]=%d", xsaves, cet_u, cet_s);
	*refused_by = NULL;
	if ((cet & GUEST_CET_IBT) && vendor == VENDOR_AMD) {
		snprintf(why, n, "AMD CPUs implement shadow stack only, not IBT (vendor %s; "
			 "KVM_GET_SUPPORTED_CPUID leaf 7.0 EDX[20]=%d)", CPUID_VENDOR_AMD, has_ibt);
		*refused_by = "cpu";
		return -1;
	}
	if ((cet & GUEST_CET_SHSTK) && !has_ss) {
		snprintf(why, n, "KVM does not offer SHSTK: KVM_GET_SUPPORTED_CPUID leaf 7.0 ECX[7]=0 (%s)", rule);
		*refused_by = "kvm";
		return -1;
	}
	if ((cet & GUEST_CET_IBT) && !has_ibt) {
		snprintf(why, n, "KVM does not offer IBT: KVM_GET_SUPPORTED_CPUID leaf 7.0 EDX[20]=0 (%s)", rule);
		*refused_by = "kvm";
		return -1;
	}
	if (cet && !(xsaves && cet_u && cet_s)) {
		snprintf(why, n, "KVM offers %s but not the supervisor state it needs (%s)",
			 cet_name(cet), rule);
		*refused_by = "kvm";
		return -1;
	}
	return 0;
}

static void set_bit(uint32_t *r, uint32_t bit, int on)
{
	*r = on ? (*r | bit) : (*r & ~bit);
}

/* The guest sees exactly the requested CET features; the XSS CET_U/CET_S enumeration goes with
 * them (the state components exist whenever CET does) and is hidden when CET is off. */
void cpuid_apply_cet(struct kvm_cpuid2 *c, uint32_t cet)
{
	struct kvm_cpuid_entry2 *l7 = cpuid_entry(c, 7, 0), *d1 = cpuid_entry(c, 0xD, 1);

	if (l7) {
		set_bit(&l7->ecx, CPUID7_ECX_SHSTK, (cet & GUEST_CET_SHSTK) != 0);
		set_bit(&l7->edx, CPUID7_EDX_IBT, (cet & GUEST_CET_IBT) != 0);
	}
	if (d1) {
		set_bit(&d1->ecx, CPUIDD1_ECX_XSS_CET_U, cet != 0);
		set_bit(&d1->ecx, CPUIDD1_ECX_XSS_CET_S, cet != 0);
	}
}

void cpuid_view(struct kvm_cpuid2 *c, struct guest_cpuid_view *v)
{
	v->c1_ecx = reg(c, 1, 0, 2);
	v->c1_edx = reg(c, 1, 0, 3);
	v->c7_ecx = reg(c, 7, 0, 2);
	v->c7_edx = reg(c, 7, 0, 3);
	v->cd0_eax = reg(c, 0xD, 0, 0);
	v->cd1_eax = reg(c, 0xD, 1, 0);
	v->cd1_ecx = reg(c, 0xD, 1, 2);
}

/* Which of the CPUID registers the setup depends on KVM changed between KVM_SET_CPUID2 and what
 * the vCPU really has (KVM_GET_CPUID2). Some KVMs force host bits on; the report names them. */
int cpuid_overrides(int vcpu_fd, struct kvm_cpuid2 *set, struct cpuid_override *out, int max)
{
	static const struct { uint32_t fn, index; int which; const char *name; } regs[] = {
		{ 1, 0, 2, "1.ecx" }, { 1, 0, 3, "1.edx" }, { 7, 0, 2, "7.0.ecx" }, { 7, 0, 3, "7.0.edx" },
		{ 0xD, 1, 0, "0xd.1.eax" }, { 0xD, 1, 2, "0xd.1.ecx" },
	};
	struct kvm_cpuid2 *got = calloc(1, sizeof(*got) + set->nent * sizeof(got->entries[0]));
	int n = 0;

	if (!got)
		return 0;
	got->nent = set->nent;
	if (ioctl(vcpu_fd, KVM_GET_CPUID2, got) == 0) {
		for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]) && n < max; i++) {
			uint32_t a = reg(set, regs[i].fn, regs[i].index, regs[i].which);
			uint32_t b = reg(got, regs[i].fn, regs[i].index, regs[i].which);
			if (a != b)
				out[n++] = (struct cpuid_override){ regs[i].name, a, b };
		}
	}
	free(got);
	return n;
}
