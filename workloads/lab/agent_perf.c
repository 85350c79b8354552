/* Counting tracepoints for a job with perf_event_open: no perf binary needed in the image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

static const char *const tracefs_roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };

/* The tracepoint's id from tracefs events/<subsys>/<name>/id, or -1 with `why`. */
static long tracepoint_id(const char *event, char *why, size_t whylen)
{
	char subsys[256], path[768], buf[32];
	const char *colon = strchr(event, ':');
	int fd = -1;
	ssize_t n;

	if (!colon || colon == event || !colon[1] || (size_t)(colon - event) >= sizeof(subsys) ||
	    strchr(event, '/') || strchr(colon + 1, ':')) {
		snprintf(why, whylen, "'%s' is not a tracepoint name (subsys:name)", event);
		return -1;
	}
	snprintf(subsys, sizeof(subsys), "%.*s", (int)(colon - event), event);
	for (size_t i = 0; i < sizeof(tracefs_roots) / sizeof(tracefs_roots[0]) && fd < 0; i++) {
		snprintf(path, sizeof(path), "%s/events/%s/%s/id", tracefs_roots[i], subsys, colon + 1);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(why, whylen, "no tracepoint %s in tracefs (events/%s/%s/id: %s)", event, subsys,
			 colon + 1, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(why, whylen, "cannot read the id of tracepoint %s", event);
		return -1;
	}
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

int lab_open_event(const char *event, const char *filter, int pid, char *why, size_t whylen)
{
	struct perf_event_attr attr;
	long id = tracepoint_id(event, why, whylen);
	int fd;

	if (id < 0)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = (unsigned long long)id;
	/* Counts the job's whole process tree (children fold their counts into this event when
	 * they exit) from its exec on: the agent's own fork and wait are not counted. */
	attr.disabled = 1;
	attr.inherit = 1;
	attr.enable_on_exec = 1;
	fd = (int)syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "perf_event_open(%s): %s", event, strerror(errno));
		return -1;
	}
	if (filter && *filter && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0) {
		snprintf(why, whylen, "tracepoint filter '%s' on %s refused: %s", filter, event, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
