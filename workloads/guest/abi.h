/* The contract between a cetbench guest image and whatever boots it: the micro-VMM on /dev/kvm
 * (workloads/vmm) or the BIOS-bootable loader used under bochs (workloads/guest/bochs).
 * Both loaders place the guest in the same state, so the same guest code runs on both.
 *
 * Boot state on entry to the image (offset 0 of the flat binary, loaded at GUEST_IMAGE_GPA):
 *   - 64-bit long mode; CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER = LME|LMA|SCE|NXE.
 *   - Paging: identity map of [0, GUEST_IDENTITY_MAP_BYTES) with 2 MiB pages, user-accessible and
 *     writable, root (PML4) at GUEST_PML4_GPA; tables occupy GUEST_PAGE_TABLES_GPA..+0x4000.
 *   - A flat GDT with CS = 0x08 (64-bit ring-0 code) and DS/ES/SS = 0x10 (ring-0 data); the guest
 *     installs its own GDT/IDT/TSS before it needs ring 3 or exceptions.
 *   - RSP = GUEST_BOOT_STACK_TOP, RFLAGS = 0x2 (interrupts off).
 *   - struct guest_params filled in at GUEST_PARAMS_GPA; struct guest_result zeroed at GUEST_RESULT_GPA.
 * The guest reports through port I/O only (so every loader can serve it):
 *   - PORT_OP:    one OUT per op of guest.vmexit.pio (the loader counts it and resumes);
 *   - PORT_PHASE: OUT of PHASE_* values at the edges of the timed loop (host-side timing);
 *   - PORT_DONE:  final OUT after struct guest_result is complete; the loader stops the guest;
 *   - PORT_LOG:   one byte of text per OUT (debug log; bochs maps it to port 0xE9).
 */
#ifndef CETBENCH_GUEST_ABI_H
#define CETBENCH_GUEST_ABI_H

#include <stdint.h>

#define GUEST_ABI_VERSION        3u  /* 2: params.cetu, result.cetu_state; 3: params.xss_set/value */
#define GUEST_PARAMS_MAGIC       0x43455442u /* "CETB" */

#define GUEST_MEM_BYTES          (64u << 20)
#define GUEST_IDENTITY_MAP_BYTES (1u << 30)
#define GUEST_PAGE_TABLES_GPA    0x1000u
#define GUEST_PML4_GPA           0x1000u
#define GUEST_PARAMS_GPA         0x7000u
#define GUEST_RESULT_GPA         0x8000u
#define GUEST_BOOT_STACK_TOP     0x1F0000u
#define GUEST_IMAGE_GPA          0x200000u
#define GUEST_IMAGE_MAX_BYTES    (2u << 20)

/* The boot-state register values above, as numbers (bit names: native/cet_arch.h). */
#define GUEST_BOOT_CR0  0x80010033u /* PE|MP|ET|NE|WP|PG */
#define GUEST_BOOT_CR4  0x00000620u /* PAE|OSFXSR|OSXMMEXCPT */
#define GUEST_BOOT_EFER 0x00000D01u /* SCE|LME|LMA|NXE */

#define PORT_OP     0x0500u
#define PORT_PHASE  0x0501u
#define PORT_DONE   0x0502u
#define PORT_LOG    0x0503u

/* PLATFORM_BOCHS: PORT_LOG bytes go to bochs's port_e9_hack port instead, the result leaves as one
 * text line "CETBENCH-RESULT key=value ...\n" there, and "Shutdown" written to the shutdown port ends bochs. */
#define BOCHS_PORT_DEBUG    0x00E9u
#define BOCHS_PORT_SHUTDOWN 0x8900u
#define GUEST_RESULT_LINE_TAG "CETBENCH-RESULT"

#define PHASE_LOOP_BEGIN 1u
#define PHASE_LOOP_END   2u

/* Which loader runs the guest: decides the exit instruction and how results leave the guest. */
enum guest_platform { PLATFORM_KVM = 1, PLATFORM_BOCHS = 2 };
/* Which hypercall instruction this CPU vendor implements. */
enum guest_vendor { VENDOR_INTEL = 1, VENDOR_AMD = 2 };

/* CET configuration requested by the loader (bit set) and reported back by the guest. */
#define GUEST_CET_IBT   (1u << 0)
#define GUEST_CET_SHSTK (1u << 1)

/* The CET_USER XSAVE component (U_CET, PL3_SSP) during a ring-0 loop (the `cetu` axis): what the
 * guest leaves in it while VM exits happen. NATURAL: as the configuration leaves it (live with
 * SHSTK); INIT: both MSRs 0 (XSAVES may skip the component); OFF: CET_U not in IA32_XSS. */
enum guest_cetu { CETU_NATURAL = 0, CETU_LIVE = 1, CETU_INIT = 2, CETU_OFF = 3 };

/* Guest workload ids (params.workload): enum guest_workload in the generated guest/workload_list.h
 * (workloads/table.py owns the list). */

/* State-save instruction the guest's context switch used (the best its CPUID offers, as Linux). */
enum guest_save_method { SAVE_NONE = 0, SAVE_FXSAVE = 1, SAVE_XSAVE = 2, SAVE_XSAVEC = 3, SAVE_XSAVES = 4 };

enum guest_status {
	GUEST_STATUS_RUNNING = 0,
	GUEST_STATUS_OK = 1,
	GUEST_STATUS_EXCEPTION = 2, /* vector, error_code, fault_rip are valid */
	GUEST_STATUS_SETUP_FAILED = 3, /* CET requested but the guest could not turn it on (why in detail) */
	GUEST_STATUS_BAD_PARAMS = 4,
	GUEST_STATUS_CET_LOST = 5, /* CET state read back after the timed loop differs from before it
				    * (what changed in detail, e.g. "U_CET 0x1 -> 0x0 after the loop") */
};

/* Ring-3 tasks whose exit SSP struct guest_result holds (cet_setup.h GUEST_TASKS is the same). */
#define GUEST_RESULT_TASKS 2

struct guest_params {
	uint32_t magic;        /* GUEST_PARAMS_MAGIC */
	uint32_t abi_version;  /* GUEST_ABI_VERSION */
	uint32_t platform;     /* enum guest_platform */
	uint32_t vendor;       /* enum guest_vendor */
	uint32_t workload;     /* enum guest_workload */
	uint32_t cet;          /* GUEST_CET_* requested */
	uint64_t iterations;   /* ops in the timed loop */
	uint64_t inject_cycles;/* extra TSC cycles of dependent work per op */
	uint32_t msr_index;    /* GW_MSR: which MSR to read */
	uint32_t save_method_max; /* 0, or the best enum guest_save_method the loader's CPUID offers:
				   * caps the guest's choice where a KVM enumerates more than it emulates */
	uint32_t cetu;         /* enum guest_cetu requested (needs SHSTK; ring-0 loops only) */
	uint32_t xss_set;      /* 1: write xss_value to IA32_XSS instead of the configuration's own */
	uint32_t xss_value;    /* the host's IA32_XSS (the `xss=host` axis), so KVM need not switch it */
	uint32_t reserved[3];
};

struct guest_result {
	uint32_t status;       /* enum guest_status */
	uint32_t cet_active;   /* GUEST_CET_* verified on by reading the state back */
	uint64_t ops;          /* ops completed */
	uint64_t tsc_begin, tsc_end; /* RDTSCP (or RDTSC+LFENCE) around the timed loop */
	uint64_t vector, error_code, fault_rip;
	/* read back by the guest after its CET setup, before the timed loop */
	uint64_t cr0, cr4, efer, xss, u_cet, s_cet, pl3_ssp, ssp;
	uint32_t cpuid7_ecx, cpuid7_edx, cpuid_d1_eax, cpuid_d1_ecx;
	uint32_t save_method;  /* enum guest_save_method used by the context switch */
	uint32_t inject_units; /* dependent-work units per op the guest calibrated for inject_cycles */
	char detail[128];      /* NUL-terminated: why setup failed, or other text for the loader */
	/* Appended (the fields above keep their offsets): the same CET state read again AFTER the timed
	 * loop, so state lost during the loop (a state save that drops CET_U, a task switch that
	 * forgets PL3_SSP) shows. cet_active above = what held both before and after. */
	uint32_t after_valid;       /* 1 once the after-loop readback below was taken */
	uint32_t cet_active_before; /* GUEST_CET_* verified on by the readback before the loop */
	uint32_t cet_active_after;  /* GUEST_CET_* verified on after the loop */
	uint32_t after_tasks;       /* bit t: task t left ring 3 after the loop; ssp_after[t] is valid */
	uint64_t cr4_after, xss_after, u_cet_after, s_cet_after, pl3_ssp_after;
	uint64_t ssp_after[GUEST_RESULT_TASKS]; /* RDSSP of task t in ring 3 as it left (0: no shadow stack) */
	uint32_t cetu_state;   /* enum guest_cetu read back at the start of the loop (never NATURAL) */
	uint32_t cetu_pad;
};

#endif
