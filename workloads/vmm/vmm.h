/* cetbench-vmm: a micro-VMM on /dev/kvm that runs one cetbench guest workload per process. */
#ifndef CETBENCH_VMM_H
#define CETBENCH_VMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/kvm.h>

#include "../guest/abi.h"
#include "../guest/cet_setup.h"
#include "guest/workload_list.h" /* generated from workloads/table.py */
#include "../native/cet_arch.h"

struct workload_info {
	uint32_t id;
	const char *name;
	int ring;
	enum workload_exit exit;
	const char *what;
};
const struct workload_info *workload_by_name(const char *name);
extern const struct workload_info workload_table[];
extern const size_t workload_count;

struct vmm_opts {
	const char *guest_path;
	const char *kvm_dev;      /* --kvm-device, default /dev/kvm */
	const struct workload_info *wl;
	uint32_t cet;             /* GUEST_CET_* */
	uint32_t cetu;            /* enum guest_cetu (--cetu) */
	int xss_host;             /* --xss host: give the guest the host's IA32_XSS */
	uint64_t iterations, inject_cycles;
	uint32_t msr_index;
	int cpu;                  /* -1: leave affinity alone */
	unsigned timeout_s;       /* 0: none */
	int explain;
	int vendor_override;      /* --vendor (explain only): VENDOR_*, 0 = detect */
	int ignore_kvm_limits;    /* run even what KVM or the CPU does not offer (to show what happens) */
};

/* ---- vmm_json.c: one JSON object on one line ---- */
struct json {
	FILE *f;
	int depth;
	int need_comma[8];
};
void json_begin(struct json *j, FILE *f);
void json_end(struct json *j);  /* closes the top object and prints the newline */
void json_obj(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_hex(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, int v);
void json_null(struct json *j, const char *key);
const char *cet_name(uint32_t cet);
const char *cetu_name(uint32_t cetu);
const char *save_method_name(uint32_t m);

/* ---- vmm_cpuid.c ---- */
const char *kvm_module(void);
const char *kvm_pvm_refusal(const struct workload_info *wl);
int workload_needs_xsaves(const struct workload_info *wl);
/* The host's IA32_XSS (MSR 0xDA0) read through /dev/cpu/CPU/msr; 0 on success, else errno. */
int host_xss(int cpu, uint64_t *value);
struct kvm_cpuid2 *cpuid_supported(int kvm_fd);  /* NULL with errno on failure */
struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index);
int cpuid_vendor(struct kvm_cpuid2 *c);           /* VENDOR_* or 0 */
/* 0 if KVM and the CPU offer `cet`; else the reason (KVM's words: leaf and bit) and who refused. */
int cpuid_check_cet(struct kvm_cpuid2 *sup, uint32_t cet, int vendor, char *why, size_t n,
		    const char **refused_by);
void cpuid_apply_cet(struct kvm_cpuid2 *c, uint32_t cet);
void cpuid_view(struct kvm_cpuid2 *c, struct guest_cpuid_view *v);
struct cpuid_override {
	const char *reg;
	uint32_t set, got;
};
int cpuid_overrides(int vcpu_fd, struct kvm_cpuid2 *set, struct cpuid_override *out, int max);

/* ---- vmm_kvm.c ---- */
struct exit_counts {
	uint64_t io, io_op, io_phase, io_log, io_done, io_other;
	uint64_t hlt, mmio, shutdown, intr, internal_error, fail_entry, other;
};
struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
};
enum run_end {
	RUN_DONE, RUN_TIMEOUT, RUN_SHUTDOWN, RUN_HLT, RUN_MMIO, RUN_INTERNAL_ERROR, RUN_FAIL_ENTRY,
	RUN_UNKNOWN_EXIT, RUN_KVM_ERROR,
};
struct run_stats {
	struct exit_counts all, loop;
	int in_loop, saw_begin, saw_end;
	uint64_t ns_begin, ns_end, tsc_begin, tsc_end;
	uint32_t last_exit_reason;
	uint64_t detail;          /* MMIO address, internal-error suberror, entry failure reason */
	uint32_t ndata;           /* KVM_EXIT_INTERNAL_ERROR data words kept */
	uint64_t data[4];
	uint64_t rip;             /* vCPU RIP when the run did not end with PORT_DONE */
	int rip_valid;
	uint16_t cs;              /* vCPU CS selector then */
	int kvm_errno;
	struct cpuid_override overrides[6];  /* guest CPUID KVM changed from what was set */
	int n_overrides;
	char log[1024];
	size_t log_len;
};
/* Sets up the VM with `cpuid` as guest CPUID; returns NULL or an error text (errno-style). */
const char *vm_create(struct vm *vm, int kvm_fd, struct kvm_cpuid2 *cpuid, const uint8_t *image,
		      size_t image_len, const struct guest_params *params);
enum run_end vm_run(struct vm *vm, struct run_stats *st, unsigned timeout_s);
const struct guest_result *vm_result(const struct vm *vm);

/* ---- vmm_report.c: the JSON line for a finished run; returns the exit status ---- */
int report(const struct vmm_opts *o, int vendor, enum run_end end, const struct run_stats *st,
	   const struct guest_result *r);

/* ---- vmm_explain.c ---- */
int explain(const struct vmm_opts *o);

#endif
