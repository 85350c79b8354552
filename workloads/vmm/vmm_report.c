/* Turns how the run ended plus the guest's struct guest_result into the one JSON line of the
 * native protocol (bench/native.py) and the exit status. */
#include <string.h>

#include "vmm.h"

static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
	"#SS", "#GP", "#PF", "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "reserved",
	"reserved", "reserved", "reserved", "reserved", "reserved", "#HV", "#VC", "#SX", "reserved",
};

static void counts(struct json *j, const char *key, const struct exit_counts *c, int loop)
{
	json_obj(j, key);
	if (loop) {
		json_u64(j, "io_op", c->io_op);
		json_u64(j, "io_other", c->io_other);
		json_u64(j, "intr", c->intr);
	} else {
		json_u64(j, "io", c->io);
		json_u64(j, "io_op", c->io_op);
		json_u64(j, "io_phase", c->io_phase);
		json_u64(j, "io_log", c->io_log);
		json_u64(j, "io_done", c->io_done);
		json_u64(j, "io_other", c->io_other);
		json_u64(j, "hlt", c->hlt);
		json_u64(j, "mmio", c->mmio);
		json_u64(j, "shutdown", c->shutdown);
		json_u64(j, "intr", c->intr);
		json_u64(j, "internal_error", c->internal_error);
		json_u64(j, "fail_entry", c->fail_entry);
		json_u64(j, "other", c->other);
	}
	json_obj_end(j);
}

/* What the guest set and read back: lets a lab engineer check the CET state of a run. */
static void readback(struct json *j, const struct guest_result *r)
{
	json_obj(j, "readback");
	json_str(j, "cet_active", cet_name(r->cet_active_before));
	json_hex(j, "cr0", r->cr0);
	json_hex(j, "cr4", r->cr4);
	json_hex(j, "efer", r->efer);
	json_hex(j, "xss", r->xss);
	json_hex(j, "u_cet", r->u_cet);
	json_hex(j, "s_cet", r->s_cet);
	json_hex(j, "pl3_ssp", r->pl3_ssp);
	json_hex(j, "ssp", r->ssp);
	json_hex(j, "cpuid7_ecx", r->cpuid7_ecx);
	json_hex(j, "cpuid7_edx", r->cpuid7_edx);
	json_hex(j, "cpuid_d1_eax", r->cpuid_d1_eax);
	json_hex(j, "cpuid_d1_ecx", r->cpuid_d1_ecx);
	json_obj_end(j);
	if (!r->after_valid)
		return;
	/* The same state read again after the timed loop: each ring-3 task's SSP as it left. */
	json_obj(j, "readback_after");
	json_str(j, "cet_active", cet_name(r->cet_active_after));
	json_hex(j, "cr4", r->cr4_after);
	json_hex(j, "xss", r->xss_after);
	json_hex(j, "u_cet", r->u_cet_after);
	json_hex(j, "s_cet", r->s_cet_after);
	json_hex(j, "pl3_ssp", r->pl3_ssp_after);
	json_arr(j, "task_ssp");
	for (uint32_t t = 0; t < GUEST_RESULT_TASKS; t++) {
		if (!(r->after_tasks & (1u << t)))
			continue;
		json_obj(j, NULL);
		json_u64(j, "task", t);
		json_hex(j, "ssp", r->ssp_after[t]);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void common_tail(struct json *j, const struct vmm_opts *o, int vendor, const struct run_stats *st)
{
	json_str(j, "workload", o->wl->name);
	json_str(j, "cet", cet_name(o->cet));
	json_str(j, "vendor", vendor == VENDOR_AMD ? "amd" : "intel");
	json_str(j, "kvm_module", kvm_module());
	counts(j, "exits", &st->all, 0);
	if (st->n_overrides) {
		json_arr(j, "kvm_cpuid_overrides");
		for (int i = 0; i < st->n_overrides; i++) {
			json_obj(j, NULL);
			json_str(j, "reg", st->overrides[i].reg);
			json_hex(j, "set", st->overrides[i].set);
			json_hex(j, "got", st->overrides[i].got);
			json_obj_end(j);
		}
		json_arr_end(j);
	}
	if (st->log_len)
		json_str(j, "guest_log", st->log);
}

static int failed(const struct vmm_opts *o, int vendor, const struct run_stats *st,
		  const struct guest_result *r, const char *error, int with_result)
{
	struct json j;

	json_begin(&j, stdout);
	json_str(&j, "error", error);
	if (with_result && r->status == GUEST_STATUS_EXCEPTION) {
		json_u64(&j, "vector", r->vector);
		json_str(&j, "vector_name", r->vector < 32 ? vector_names[r->vector] : "?");
		json_u64(&j, "error_code", r->error_code);
		json_hex(&j, "rip", r->fault_rip);
	}
	if (with_result && r->detail[0])
		json_str(&j, "detail", r->detail);
	if (with_result)
		readback(&j, r);
	if (st->rip_valid) {
		json_hex(&j, "vcpu_rip", st->rip);
		json_hex(&j, "vcpu_cs", st->cs);
	}
	if (st->ndata) {
		json_arr(&j, "internal_data");
		for (uint32_t i = 0; i < st->ndata; i++)
			json_hex(&j, NULL, st->data[i]);
		json_arr_end(&j);
	}
	if (o->timeout_s && !strcmp(error, "timeout"))
		json_u64(&j, "timeout_s", o->timeout_s);
	common_tail(&j, o, vendor, st);
	json_end(&j);
	return EXIT_FAILED;
}

static int measured(const struct vmm_opts *o, int vendor, const struct run_stats *st,
		    const struct guest_result *r)
{
	struct json j;

	json_begin(&j, stdout);
	json_u64(&j, "iterations", o->iterations);
	json_u64(&j, "elapsed_ns", st->ns_end - st->ns_begin);
	json_u64(&j, "tsc_ticks", st->tsc_end - st->tsc_begin);
	json_u64(&j, "guest_cycles", r->tsc_end - r->tsc_begin);
	json_i64(&j, "cpu", o->cpu);
	json_u64(&j, "inject_cycles", o->inject_cycles);
	json_u64(&j, "inject_units", r->inject_units);
	json_str(&j, "cet_active", cet_name(r->cet_active));
	json_str(&j, "cetu", cetu_name(r->cetu_state));
	if (o->xss_host)  /* the guest ran with the host's IA32_XSS (the readback's xss shows it) */
		json_str(&j, "xss_mode", "host");
	json_str(&j, "save_method", save_method_name(r->save_method));
	counts(&j, "loop_exits", &st->loop, 1);
	json_u64(&j, "kvm_api", KVM_API_VERSION);
	if (o->wl->id == GW_MSR)
		json_hex(&j, "msr_index", o->msr_index);
	if (o->wl->id == GW_HYPERCALL)
		json_str(&j, "hypercall_insn", vendor == VENDOR_AMD ? "vmmcall" : "vmcall");
	readback(&j, r);
	common_tail(&j, o, vendor, st);
	json_end(&j);
	return EXIT_MEASURED;
}

int report(const struct vmm_opts *o, int vendor, enum run_end end, const struct run_stats *st,
	   const struct guest_result *r)
{
	char msg[160];

	switch (end) {
	case RUN_DONE:
		break;
	case RUN_TIMEOUT:
		return failed(o, vendor, st, r, "timeout", 0);
	case RUN_SHUTDOWN:
		return failed(o, vendor, st, r, "triple fault (KVM_EXIT_SHUTDOWN)", 1);
	case RUN_HLT:
		return failed(o, vendor, st, r, "guest halted without reporting (KVM_EXIT_HLT)", 1);
	case RUN_MMIO:
		snprintf(msg, sizeof(msg), "guest touched unbacked memory at 0x%llx (KVM_EXIT_MMIO)",
			 (unsigned long long)st->detail);
		return failed(o, vendor, st, r, msg, 1);
	case RUN_INTERNAL_ERROR:
		snprintf(msg, sizeof(msg), "KVM internal error, suberror %llu (KVM_EXIT_INTERNAL_ERROR)",
			 (unsigned long long)st->detail);
		return failed(o, vendor, st, r, msg, 1);
	case RUN_FAIL_ENTRY:
		snprintf(msg, sizeof(msg), "VM entry failed, hardware reason 0x%llx (KVM_EXIT_FAIL_ENTRY)",
			 (unsigned long long)st->detail);
		return failed(o, vendor, st, r, msg, 1);
	case RUN_UNKNOWN_EXIT:
		snprintf(msg, sizeof(msg), "unknown exit reason %u", st->last_exit_reason);
		return failed(o, vendor, st, r, msg, 1);
	case RUN_KVM_ERROR:
		snprintf(msg, sizeof(msg), "KVM_RUN failed: %s", strerror(st->kvm_errno));
		return failed(o, vendor, st, r, msg, 1);
	}
	switch (r->status) {
	case GUEST_STATUS_OK:
		break;
	case GUEST_STATUS_EXCEPTION:
		return failed(o, vendor, st, r, "guest exception", 1);
	case GUEST_STATUS_SETUP_FAILED:
		return failed(o, vendor, st, r, "guest setup failed", 1);
	case GUEST_STATUS_BAD_PARAMS:
		return failed(o, vendor, st, r, "guest rejected its params", 1);
	case GUEST_STATUS_CET_LOST:
		return failed(o, vendor, st, r, "guest CET state changed during the timed loop", 1);
	default:
		return failed(o, vendor, st, r, "guest stopped without a status", 1);
	}
	if (o->wl->exit == WL_EXIT_FAULT)
		return failed(o, vendor, st, r, "expected exception did not occur", 1);
	if (o->wl->exit == WL_EXIT_CET_LOST)
		return failed(o, vendor, st, r, "expected CET loss was not reported", 1);
	if (!r->after_valid)
		return failed(o, vendor, st, r, "guest did not read its CET state back after the loop", 1);
	if (r->cet_active != o->cet)
		return failed(o, vendor, st, r, "guest CET read-back differs from the request", 1);
	if (r->ops != o->iterations || !st->saw_begin || !st->saw_end)
		return failed(o, vendor, st, r, "guest finished without a complete timed loop", 1);
	return measured(o, vendor, st, r);
}
