/* Reading the job file and running one job: kvm_intel reload, counters, the workload, its JSON. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define TAIL_LINES 20
#define TAIL_LINE_MAX 400
#define RECORD_MAX (256 * 1024)

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = 0;
	return buf;
}

/* Calls `fn` for every line "key value" of the file; stops when it returns non-zero. */
static int each_line(char *text, int (*fn)(const char *key, const char *value, void *ctx), void *ctx)
{
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n'), *sp;
		const char *value = "";
		int rc;

		if (next)
			*next++ = 0;
		if (*line && *line != '#') {
			sp = strchr(line, ' ');
			if (sp) {
				*sp = 0;
				value = sp + 1;
			}
			rc = fn(line, value, ctx);
			if (rc)
				return rc;
		}
		line = next;
	}
	return 0;
}

static int count_fn(const char *key, const char *value, void *ctx)
{
	(void)value;
	if (!strcmp(key, "job"))
		(*(int *)ctx)++;
	return 0;
}

int lab_count_jobs(const char *path)
{
	char *text = read_file(path);
	int n = 0;

	if (!text) {
		fprintf(stderr, "cetbench-lab-agent: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	each_line(text, count_fn, &n);
	free(text);
	return n;
}

struct load_ctx {
	int want, seen;
	struct lab_job *job;
	char *why;
	size_t whylen;
};

static int copy_field(char *dst, const char *src, struct load_ctx *c, const char *key)
{
	if (strlen(src) >= LAB_FIELD_MAX) {
		snprintf(c->why, c->whylen, "job file: %s value longer than %d bytes", key, LAB_FIELD_MAX - 1);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

static int load_fn(const char *key, const char *value, void *ctx)
{
	struct load_ctx *c = ctx;
	struct lab_job *j = c->job;

	if (!strcmp(key, "job")) {
		if (c->seen++ == c->want)
			return copy_field(j->id, value, c, key);
		return c->seen > c->want + 1 ? 1 : 0; /* past our block: stop */
	}
	if (c->seen != c->want + 1)
		return 0;
	if (!strcmp(key, "end"))
		return 1;
	if (!strcmp(key, "timeout")) {
		j->timeout_s = strtod(value, NULL);
	} else if (!strcmp(key, "settle")) {
		j->settle_s = strtod(value, NULL);
	} else if (!strcmp(key, "kvm_intel")) {
		j->reload_kvm_intel = 1;
		return copy_field(j->kvm_intel_params, value, c, key);
	} else if (!strcmp(key, "event")) {
		if (j->n_events >= LAB_MAX_EVENTS) {
			snprintf(c->why, c->whylen, "job file: more than %d events", LAB_MAX_EVENTS);
			return -1;
		}
		if (copy_field(j->events[j->n_events], value, c, key))
			return -1;
		j->filters[j->n_events][0] = 0;
		snprintf(j->labels[j->n_events], sizeof(j->labels[0]), "%s", value);
		j->n_events++;
	} else if (!strcmp(key, "filter")) {
		int e = j->n_events - 1;

		if (e < 0) {
			snprintf(c->why, c->whylen, "job file: filter before any event");
			return -1;
		}
		if (copy_field(j->filters[e], value, c, key))
			return -1;
		/* The count's key is the event as the host wrote it: "subsys:name if filter". */
		size_t n = strlen(j->events[e]);

		memcpy(j->labels[e], j->events[e], n);
		memcpy(j->labels[e] + n, " if ", 4);
		strcpy(j->labels[e] + n + 4, j->filters[e]);
	} else if (!strcmp(key, "arg")) {
		if (j->argc >= LAB_MAX_ARGS) {
			snprintf(c->why, c->whylen, "job file: more than %d arguments", LAB_MAX_ARGS);
			return -1;
		}
		j->argv[j->argc] = strdup(value);
		j->argv[++j->argc] = NULL;
	} else {
		snprintf(c->why, c->whylen, "job file: unknown line '%s'", key);
		return -1;
	}
	return 0;
}

int lab_load_job(const char *path, int index, struct lab_job *job, char *why, size_t whylen)
{
	struct load_ctx c = { index, 0, job, why, whylen };
	char *text = read_file(path);
	int rc;

	memset(job, 0, sizeof(*job));
	job->timeout_s = 60;
	if (!text) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = each_line(text, load_fn, &c);
	free(text);
	if (rc < 0)
		return -1;
	if (c.seen <= index) {
		snprintf(why, whylen, "job file has no job %d", index);
		return -1;
	}
	if (!job->argc) {
		snprintf(why, whylen, "job %s has no command", job->id);
		return -1;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the job printed: the last TAIL_LINES lines and the last line that starts with '{'. */
struct output {
	char *cur;
	size_t cur_len;
	char *record;
	char tail[TAIL_LINES][TAIL_LINE_MAX];
	unsigned n_lines;
};

static void end_line(struct output *o)
{
	const char *p = o->cur;

	o->cur[o->cur_len] = 0;
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (*p == '{') {
		free(o->record);
		o->record = strdup(p);
	}
	snprintf(o->tail[o->n_lines % TAIL_LINES], TAIL_LINE_MAX, "%s", o->cur);
	o->n_lines++;
	o->cur_len = 0;
}

static void take_output(struct output *o, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			end_line(o);
		} else if (o->cur_len < RECORD_MAX) {
			o->cur[o->cur_len++] = buf[i];
		}
	}
}

/* The child: its own process group (so a timeout kills its whole tree), output into the pipe,
 * then wait for the counters to be open before exec. Never returns. */
static void child(const struct lab_job *job, int go_rd, int out_wr, int ex_wr)
{
	char c;
	int err;

	setpgid(0, 0);
	dup2(out_wr, STDOUT_FILENO);
	dup2(out_wr, STDERR_FILENO);
	if (read(go_rd, &c, 1) != 1)
		_exit(127);
	execv(job->argv[0], job->argv);
	err = errno;
	if (write(ex_wr, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

static struct lab_job_fds {
	int fd[LAB_MAX_EVENTS];
	char why[LAB_MAX_EVENTS][300];
} ev;

int lab_run_job(const struct lab_job *job, int index)
{
	struct jbuf j, start;
	struct output out = { 0 };
	int go[2], op[2], ex[2], status = 0, exec_errno = 0, timed_out = 0, reaped = 0;
	char why[600] = "", c = 'g';
	double t0, deadline;
	pid_t pid;

	out.cur = malloc(RECORD_MAX + 1);
	if (!out.cur)
		abort();
	jb_init(&start);
	jb_raw(&start, "{");
	jb_key(&start, "id");
	jb_str(&start, job->id, strlen(job->id));
	jb_printf(&start, ",\"index\":%d,\"uptime\":%.3f}", index, lab_uptime());
	lab_emit("start", &start);
	jb_free(&start);
	/* Time for a host-side counter to attach once it has read the start line (a Linux guest under
	 * QEMU on KVM: perf stat -p QEMU for the job's kvm:* events). */
	if (job->settle_s > 0) {
		struct timespec ts = { (time_t)job->settle_s,
				       (long)((job->settle_s - (double)(time_t)job->settle_s) * 1e9) };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}

	jb_init(&j);
	jb_raw(&j, "{");
	jb_key(&j, "id");
	jb_str(&j, job->id, strlen(job->id));
	jb_printf(&j, ",\"index\":%d", index);

	if (job->reload_kvm_intel && lab_reload_kvm_intel(job->kvm_intel_params, why, sizeof(why))) {
		jb_key(&j, "error");
		jb_str(&j, why, strlen(why));
		jb_raw(&j, "}");
		lab_emit("job", &j);
		jb_free(&j);
		return 0;
	}
	jb_key(&j, "kvm_intel");
	if (access(LAB_KVM_INTEL_PARAMS, F_OK) == 0) {
		jb_raw(&j, "{");
		lab_kvm_intel_params(&j);
		jb_raw(&j, "}");
	} else {
		jb_raw(&j, "null"); /* module not loaded */
	}

	if (pipe2(go, O_CLOEXEC) || pipe2(op, O_CLOEXEC) || pipe2(ex, O_CLOEXEC)) {
		jb_key(&j, "error");
		jb_printf(&j, "\"pipe2: %s\"}", strerror(errno));
		lab_emit("job", &j);
		return 0;
	}
	t0 = now_s();
	pid = fork();
	if (pid == 0)
		child(job, go[0], op[1], ex[1]);
	close(go[0]);
	close(op[1]);
	close(ex[1]);
	if (pid < 0) {
		jb_key(&j, "error");
		jb_printf(&j, "\"fork: %s\"}", strerror(errno));
		lab_emit("job", &j);
		return 0;
	}
	setpgid(pid, pid);
	for (int e = 0; e < job->n_events; e++) {
		ev.why[e][0] = 0;
		ev.fd[e] = lab_open_event(job->events[e], job->filters[e], pid, ev.why[e], sizeof(ev.why[e]));
	}
	if (write(go[1], &c, 1) != 1)
		snprintf(why, sizeof(why), "could not start the job's process");
	close(go[1]);
	if (read(ex[0], &exec_errno, sizeof(exec_errno)) != (ssize_t)sizeof(exec_errno))
		exec_errno = 0; /* EOF: the exec succeeded and closed the pipe */
	close(ex[0]);

	/* Output until EOF or the deadline (guest time: the emulated clock). */
	deadline = t0 + job->timeout_s;
	for (;;) {
		struct pollfd p = { op[0], POLLIN, 0 };
		double left = deadline - now_s();
		char buf[4096];
		ssize_t n;

		if (left <= 0) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (!p.revents)
			continue;
		n = read(op[0], buf, sizeof(buf));
		if (n <= 0)
			break;
		take_output(&out, buf, (size_t)n);
	}
	if (out.cur_len)
		end_line(&out);
	/* The child may have closed its output and still run: give it until the deadline. */
	while (!reaped) {
		pid_t w = waitpid(pid, &status, timed_out ? 0 : WNOHANG);

		if (w == pid) {
			reaped = 1;
		} else if (w < 0) {
			break;
		} else if (now_s() > deadline) {
			timed_out = 1;
			kill(-pid, SIGKILL);
		} else {
			usleep(1000);
		}
	}
	kill(-pid, SIGKILL); /* nothing of the job outlives it */
	close(op[0]);

	jb_printf(&j, ",\"guest_s\":%.6f,\"timed_out\":%s", now_s() - t0, timed_out ? "true" : "false");
	if (reaped && WIFEXITED(status) && !exec_errno)
		jb_printf(&j, ",\"exit_code\":%d,\"signal\":null", WEXITSTATUS(status));
	else if (reaped && WIFSIGNALED(status))
		jb_printf(&j, ",\"exit_code\":null,\"signal\":%d", WTERMSIG(status));
	else
		jb_raw(&j, ",\"exit_code\":null,\"signal\":null");
	jb_key(&j, "record");
	if (out.record)
		jb_str(&j, out.record, strlen(out.record));
	else
		jb_raw(&j, "null");
	jb_key(&j, "output_tail");
	jb_raw(&j, "[");
	for (unsigned i = out.n_lines > TAIL_LINES ? out.n_lines - TAIL_LINES : 0; i < out.n_lines; i++) {
		const char *line = out.tail[i % TAIL_LINES];

		if (j.s[j.len - 1] != '[')
			jb_raw(&j, ",");
		jb_str(&j, line, strlen(line));
	}
	jb_raw(&j, "]");
	jb_key(&j, "counts");
	jb_raw(&j, "{");
	for (int e = 0; e < job->n_events; e++) {
		unsigned long long count;

		if (ev.fd[e] < 0)
			continue;
		if (read(ev.fd[e], &count, sizeof(count)) != (ssize_t)sizeof(count))
			snprintf(ev.why[e], sizeof(ev.why[e]), "read of the counter failed: %s", strerror(errno));
		else {
			jb_key(&j, job->labels[e]);
			jb_printf(&j, "%llu", count);
		}
		close(ev.fd[e]);
	}
	jb_raw(&j, "}");
	jb_key(&j, "event_errors");
	jb_raw(&j, "{");
	for (int e = 0; e < job->n_events; e++) {
		if (ev.why[e][0]) {
			jb_key(&j, job->labels[e]);
			jb_str(&j, ev.why[e], strlen(ev.why[e]));
		}
	}
	jb_raw(&j, "}");
	if (exec_errno)
		snprintf(why, sizeof(why), "cannot run %s: %s", job->argv[0], strerror(exec_errno));
	else if (timed_out)
		snprintf(why, sizeof(why), "timed out after %g s of guest time (killed)", job->timeout_s);
	jb_key(&j, "error");
	if (why[0])
		jb_str(&j, why, strlen(why));
	else
		jb_raw(&j, "null");
	jb_raw(&j, "}");
	lab_emit("job", &j);
	jb_free(&j);
	free(out.cur);
	free(out.record);
	return 0;
}
