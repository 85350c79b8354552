/* cetbench-lab-agent: the in-guest half of the emulated CET lab (bench/lab/).
 *
 * The init script (workloads/lab/init) calls it to report progress, dump the files the host-side
 * probe reads, and run the jobs of the job file one at a time. Everything it says goes to stdout
 * (the serial console) as lines
 *     CETBENCH-LAB <kind> <crc32 of the JSON, 8 hex digits> <one JSON object>
 * so the host can find them among kernel messages and reject a line the console cut or mixed
 * (bench/lab/serial.py parses them; bench/lab/jobs.py writes the job file).
 */
#ifndef CETBENCH_LAB_AGENT_H
#define CETBENCH_LAB_AGENT_H

#include <stddef.h>
#include <stdint.h>

#define LAB_LINE_TAG "CETBENCH-LAB"
#define LAB_MAX_ARGS 64
#define LAB_MAX_EVENTS 32
#define LAB_MAX_PARAMS 16
#define LAB_FIELD_MAX 1024
/* Where the image keeps the kvm_intel module (bench/lab/image.py MODULE_DIR). */
#define LAB_KVM_INTEL_KO "/lib/modules/kvm-intel.ko"
#define LAB_KVM_INTEL_PARAMS "/sys/module/kvm_intel/parameters"

/* One job of the job file (format: bench/lab/jobs.py encode_jobs). */
struct lab_job {
	char id[LAB_FIELD_MAX];
	double timeout_s;
	double settle_s;                          /* idle this long after the `start` line, before the job */
	int reload_kvm_intel;                     /* a `kvm_intel` line was given */
	char kvm_intel_params[LAB_FIELD_MAX];     /* "cet=0 ..." as insmod takes them */
	int n_events;
	char events[LAB_MAX_EVENTS][LAB_FIELD_MAX];  /* "subsys:name" */
	char filters[LAB_MAX_EVENTS][LAB_FIELD_MAX]; /* "" = no filter */
	char labels[LAB_MAX_EVENTS][2 * LAB_FIELD_MAX + 4]; /* the key of its count: "ev" or "ev if f" */
	int argc;
	char *argv[LAB_MAX_ARGS + 1];
};

/* ---- agent_out.c: JSON text and the framed serial line ---- */
struct jbuf {
	char *s;
	size_t len, cap;
};
void jb_init(struct jbuf *b);
void jb_raw(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_str(struct jbuf *b, const char *s, size_t n); /* a JSON string of n bytes */
void jb_key(struct jbuf *b, const char *key);         /* `,"key":` (no comma at the start) */
void jb_free(struct jbuf *b);
/* Writes `TAG kind crc json\n` in one write and waits until the console has sent it. */
void lab_emit(const char *kind, const struct jbuf *json);
uint32_t lab_crc32(const char *data, size_t n);
double lab_uptime(void);

/* ---- agent_job.c ---- */
/* Number of jobs in the file, or -1 with a message on stderr. */
int lab_count_jobs(const char *path);
/* Parses job `index`; 0 on success, else -1 with `why` filled. */
int lab_load_job(const char *path, int index, struct lab_job *job, char *why, size_t whylen);
/* Runs a job and emits its `job` line; returns 0 (the outcome is in the line). */
int lab_run_job(const struct lab_job *job, int index);

/* ---- agent_kmod.c ---- */
/* rmmod kvm_intel (if loaded) and insmod it with `params`; 0 or -1 with `why`. */
int lab_reload_kvm_intel(const char *params, char *why, size_t whylen);
/* `"name":"value",...` of every kvm_intel parameter into b (an object body), or nothing. */
void lab_kvm_intel_params(struct jbuf *b);

/* ---- agent_perf.c ---- */
/* Opens one counting event on `pid` (and, inherited, its descendants), enabled when it execs.
 * Returns the fd, or -1 with `why` filled. */
int lab_open_event(const char *event, const char *filter, int pid, char *why, size_t whylen);

#endif
