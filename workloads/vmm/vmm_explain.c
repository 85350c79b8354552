/* --explain: print, without running anything, exactly what a variant sets: the guest CPUID bits,
 * control registers, MSR values, shadow-stack layout and the exit the loop makes. The values come
 * from cet_setup_compute() and the layout macros in guest/cet_setup.h - the code the guest runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

struct kvm_view {
	const char *status;      /* runnable | unsupported | unavailable */
	const char *refused_by;
	char why[512];
	int vendor;
	struct guest_cpuid_view cpuid;
	const char *cpuid_source;
};

/* The guest CPUID the VMM would set. When this host's KVM cannot offer the variant, show it as on
 * a host that does: KVM's rule then implies XSAVE, XSAVES and both XSS CET bits are there too. */
static void kvm_view(const struct vmm_opts *o, struct kvm_view *k)
{
	struct kvm_cpuid2 *sup = NULL;
	int fd = open(o->kvm_dev, O_RDWR | O_CLOEXEC);

	memset(k, 0, sizeof(*k));
	k->status = "runnable";
	k->cpuid_source = "KVM_GET_SUPPORTED_CPUID with the CET bits set or cleared";
	if (fd < 0) {
		snprintf(k->why, sizeof(k->why), "cannot open %s: %s", o->kvm_dev, strerror(errno));
		k->status = "unavailable";
	} else if (!(sup = cpuid_supported(fd))) {
		snprintf(k->why, sizeof(k->why), "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
		k->status = "unavailable";
	}
	k->vendor = o->vendor_override ? o->vendor_override : sup ? cpuid_vendor(sup) : VENDOR_INTEL;
	if (sup && cpuid_check_cet(sup, o->cet, k->vendor, k->why, sizeof(k->why), &k->refused_by)) {
		k->status = "unsupported";
	} else if (sup && !strcmp(kvm_module(), "kvm_pvm") && kvm_pvm_refusal(o->wl)) {
		snprintf(k->why, sizeof(k->why), "%s", kvm_pvm_refusal(o->wl));
		k->refused_by = "kvm";
		k->status = "unsupported";
	}
	if (sup) {
		cpuid_apply_cet(sup, o->cet);
		cpuid_view(sup, &k->cpuid);
	} else {
		k->cpuid.c1_edx = CPUID1_EDX_FXSR;
		k->cpuid_source = "no KVM here: FXSR only, plus the CET bits";
	}
	if (strcmp(k->status, "runnable") && o->cet) {
		k->cpuid.c1_ecx |= CPUID1_ECX_XSAVE;
		k->cpuid.cd1_eax |= CPUIDD1_EAX_XSAVES;
		k->cpuid.cd1_ecx |= CPUIDD1_ECX_XSS_CET_U | CPUIDD1_ECX_XSS_CET_S;
		k->cpuid.c7_ecx |= (o->cet & GUEST_CET_SHSTK) ? CPUID7_ECX_SHSTK : 0;
		k->cpuid.c7_edx |= (o->cet & GUEST_CET_IBT) ? CPUID7_EDX_IBT : 0;
		k->cpuid_source = "as on a host whose KVM offers this variant: this host's "
				  "KVM_GET_SUPPORTED_CPUID plus the CET bits, XSAVE, XSAVES and XSS CET_U/CET_S "
				  "(KVM offers CET only with them)";
	}
	free(sup);
	if (fd >= 0)
		close(fd);
}

static void msr(struct json *j, const char *name, uint32_t index, uint64_t value, int written,
		const char *note)
{
	json_obj(j, name);
	json_hex(j, "index", index);
	if (written)
		json_hex(j, "value", value);
	else
		json_null(j, "value");
	json_bool(j, "written", written);
	if (note)
		json_str(j, "note", note);
	json_obj_end(j);
}

static void cet_bits(struct json *j, const char *key, uint64_t v)
{
	static const struct { uint64_t bit; const char *name; } bits[] = {
		{ CET_SHSTK_EN, "SH_STK_EN" }, { CET_WRSS_EN, "WR_SHSTK_EN" }, { CET_ENDBR_EN, "ENDBR_EN" },
		{ CET_LEG_IW_EN, "LEG_IW_EN" }, { CET_NO_TRACK_EN, "NO_TRACK_EN" },
		{ CET_SUPPRESS_DIS, "SUPPRESS_DIS" }, { CET_SUPPRESS, "SUPPRESS" }, { CET_WAIT_ENDBR, "TRACKER" },
	};
	json_arr(j, key);
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (v & bits[i].bit)
			json_str(j, NULL, bits[i].name);
	json_arr_end(j);
}

static void pte_bits(struct json *j, uint64_t pte)
{
	json_obj(j, "pte_bits");
	json_u64(j, "P", !!(pte & PTE_P));
	json_u64(j, "R/W", !!(pte & PTE_RW));
	json_u64(j, "U/S", !!(pte & PTE_US));
	json_u64(j, "A", !!(pte & PTE_A));
	json_u64(j, "D", !!(pte & PTE_D));
	json_obj_end(j);
}

static void shadow_stacks(struct json *j, const struct cet_setup *s)
{
	int n = (s->cet & GUEST_CET_SHSTK) ? GUEST_TASKS : 0;

	json_arr(j, "shadow_stacks");
	for (int t = 0; t < n; t++) {
		uint64_t pte = guest_split_pte(GUEST_SHSTK_GPA(t));
		json_obj(j, NULL);
		json_u64(j, "task", (uint64_t)t);
		json_str(j, "privilege", "user");
		json_hex(j, "base", GUEST_SHSTK_GPA(t));
		json_hex(j, "top", GUEST_SHSTK_TOP(t));
		json_hex(j, "initial_ssp", s->pl3_ssp[t]);
		/* what RDSSPQ one CALL deep in the task must read as it leaves ring 3: result.ssp (task 0's
		 * probe before the loop) and result.ssp_after[t] (after the loop) */
		json_hex(j, "readback_ssp", s->pl3_ssp[t] - 8);
		json_hex(j, "pte", pte);
		pte_bits(j, pte);
		json_hex(j, "guard_below", GUEST_SHSTK_GPA(t) - 0x1000u);
		json_hex(j, "guard_below_pte", guest_split_pte(GUEST_SHSTK_GPA(t) - 0x1000u));
		json_hex(j, "guard_above", GUEST_SHSTK_TOP(t));
		json_hex(j, "guard_above_pte", guest_split_pte(GUEST_SHSTK_TOP(t)));
		json_null(j, "token");
		json_obj_end(j);
	}
	json_arr_end(j);
	json_str(j, "tokens", "none: SYSRET loads SSP from IA32_PL3_SSP without a token check (SDM SYSRET), "
		 "so a task's SSP starts at the top of its page with nothing on it (as Linux starts one); "
		 "supervisor shadow stacks are off, so no busy token, SETSSBSY/CLRSSBSY or PL0_SSP");
}

static void loop(struct json *j, const struct vmm_opts *o, int vendor)
{
	static const char *const exits[] = WORKLOAD_EXIT_WHAT;
	json_obj(j, "loop");
	json_u64(j, "ring", (uint64_t)o->wl->ring);
	json_str(j, "op", o->wl->what);
	json_str(j, "vm_exit", exits[o->wl->exit]);
	if (o->wl->id == GW_HYPERCALL) {
		json_str(j, "hypercall_insn", vendor == VENDOR_AMD ? "vmmcall" : "vmcall");
		json_u64(j, "hypercall_nr", KVM_HC_VAPIC_POLL_IRQ);
	}
	if (o->wl->id == GW_MSR)
		json_hex(j, "msr_index", o->msr_index);
	if (o->wl->id == GW_PIO)
		json_hex(j, "port", PORT_OP);
	json_str(j, "timing", "guest LFENCE;RDTSC;LFENCE around the loop; host CLOCK_MONOTONIC_RAW and "
		 "RDTSCP at the OUTs to PORT_PHASE (PHASE_LOOP_BEGIN/END)");
	json_str(j, "cet_check", "CR4, S_CET, U_CET, PL3_SSP, XSS and a ring-3 RDSSPQ read back before and "
		 "after the loop (after: by every task as it leaves ring 3); a change ends the run "
		 "GUEST_STATUS_CET_LOST");
	json_obj_end(j);
}

int explain(const struct vmm_opts *o)
{
	static const char *const switches[] = { "none", "xsaves (IA32_XSS.CET_U)", "rdmsr/wrmsr IA32_PL3_SSP" };
	struct kvm_view k;
	struct cet_setup s;
	struct json j;
	const struct guest_cpuid_view *c = &k.cpuid;
	int has_ss = !!(o->cet & GUEST_CET_SHSTK);

	kvm_view(o, &k);
	cet_setup_compute(&s, o->cet, o->cetu, c);

	json_begin(&j, stdout);
	json_str(&j, "workload", o->wl->name);
	json_str(&j, "cet", cet_name(o->cet));
	if (o->cetu)
		json_str(&j, "cetu", o->cetu == CETU_INIT ?
			 "init: the guest writes U_CET = 0 and PL3_SSP = 0 before the timed loop and restores them after "
			 "it, so at every VM exit its CET_USER state is in its init configuration" :
			 o->cetu == CETU_OFF ? "off: CET_U is left out of the guest's IA32_XSS" :
			 "live: U_CET and PL3_SSP as the configuration sets them");
	json_str(&j, "vendor", k.vendor == VENDOR_AMD ? "amd" : "intel");
	json_obj(&j, "kvm");
	json_str(&j, "status", k.status);
	json_str(&j, "module", kvm_module());
	if (k.refused_by)
		json_str(&j, "refused_by", k.refused_by);
	if (k.why[0])
		json_str(&j, "reason", k.why);
	json_obj_end(&j);

	json_obj(&j, "guest_cpuid");
	json_str(&j, "source", k.cpuid_source);
	json_hex(&j, "1.ecx", c->c1_ecx);
	json_hex(&j, "1.edx", c->c1_edx);
	json_hex(&j, "7.0.ecx", c->c7_ecx);
	json_hex(&j, "7.0.edx", c->c7_edx);
	json_hex(&j, "0xd.0.eax", c->cd0_eax);
	json_hex(&j, "0xd.1.eax", c->cd1_eax);
	json_hex(&j, "0xd.1.ecx", c->cd1_ecx);
	json_u64(&j, "shstk(7.0.ecx[7])", !!(c->c7_ecx & CPUID7_ECX_SHSTK));
	json_u64(&j, "ibt(7.0.edx[20])", !!(c->c7_edx & CPUID7_EDX_IBT));
	json_u64(&j, "xsaves(0xd.1.eax[3])", !!(c->cd1_eax & CPUIDD1_EAX_XSAVES));
	json_u64(&j, "xss_cet_u(0xd.1.ecx[11])", !!(c->cd1_ecx & CPUIDD1_ECX_XSS_CET_U));
	json_u64(&j, "xss_cet_s(0xd.1.ecx[12])", !!(c->cd1_ecx & CPUIDD1_ECX_XSS_CET_S));
	json_obj_end(&j);

	json_obj(&j, "boot");
	json_hex(&j, "cr0", GUEST_BOOT_CR0);
	json_hex(&j, "cr4", GUEST_BOOT_CR4);
	json_hex(&j, "efer", GUEST_BOOT_EFER);
	json_hex(&j, "cr3", GUEST_PML4_GPA);
	json_obj_end(&j);

	json_hex(&j, "cr0", s.cr0);
	json_hex(&j, "cr4", s.cr4);
	json_hex(&j, "efer", s.efer);
	json_hex(&j, "xcr0", s.xcr0);
	json_str(&j, "save_method", save_method_name(s.save_method));
	json_str(&j, "cet_u_switch", switches[s.cet_u_switch]);
	json_bool(&j, "supervisor_shadow_stack", 0);

	json_obj(&j, "msrs");
	msr(&j, "IA32_XSS", MSR_IA32_XSS, s.xss, s.save_method == SAVE_XSAVES, NULL);
	msr(&j, "IA32_U_CET", MSR_IA32_U_CET, s.u_cet, s.cet != 0, NULL);
	msr(&j, "IA32_S_CET", MSR_IA32_S_CET, s.s_cet, s.cet != 0, NULL);
	msr(&j, "IA32_PL3_SSP", MSR_IA32_PL3_SSP, s.pl3_ssp[0], has_ss,
	    has_ss ? "task 0's initial SSP; each task's own is in shadow_stacks" : NULL);
	msr(&j, "IA32_PL0_SSP", MSR_IA32_PL0_SSP, 0, 0, "no supervisor shadow stack (S_CET.SH_STK_EN=0, as Linux)");
	msr(&j, "IA32_INTERRUPT_SSP_TABLE_ADDR", MSR_IA32_INT_SSP_TAB, 0, 0, "no supervisor shadow stack");
	msr(&j, "IA32_STAR", MSR_STAR, GUEST_STAR, 1, "SYSCALL CS/SS 0x08/0x10, SYSRET CS/SS 0x2b/0x23");
	msr(&j, "IA32_FMASK", MSR_SYSCALL_MASK, GUEST_SFMASK, 1, "TF|IF|DF|AC cleared on SYSCALL");
	msr(&j, "IA32_LSTAR", MSR_LSTAR, 0, 0, "written with the address of syscall_entry, which starts with ENDBR64");
	json_obj_end(&j);
	cet_bits(&j, "u_cet_bits", s.u_cet);
	cet_bits(&j, "s_cet_bits", s.s_cet);
	json_hex(&j, "user_rflags", GUEST_USER_RFLAGS);

	shadow_stacks(&j, &s);
	json_obj(&j, "page_tables");
	json_hex(&j, "split_region", GUEST_SPLIT_REGION_GPA);
	json_hex(&j, "split_pt", GUEST_SPLIT_PT_GPA);
	json_hex(&j, "split_pde", GUEST_SPLIT_PDE);
	json_str(&j, "note", "non-leaf entries keep R/W=1 so the leaf's R/W=0,D=1 makes a shadow-stack page");
	json_obj_end(&j);
	json_str(&j, "ibt_endbr64", "every IDT handler (vectors 0-31), syscall_entry (IA32_LSTAR), "
		 "user_task_start and every C function (-fcf-protection=full); no NOTRACK (NO_TRACK_EN=0, "
		 "-fno-jump-tables); user IBT off (U_CET.ENDBR_EN=0, as Linux)");
	loop(&j, o, k.vendor);
	json_end(&j);
	return 0;
}
