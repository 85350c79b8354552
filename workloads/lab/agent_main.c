/* cetbench-lab-agent: see agent.h. Commands (used by workloads/lab/init):
 *   mark NAME                   progress line {"name", "uptime"}
 *   dump text|hex|exists PATH.. one `file` line per path, for the host-side probe
 *   dump msr INDEX...          the MSR at INDEX of CPU 0 (msr driver), as `file` line of /dev/cpu/0/msr
 *   count JOBFILE               prints the number of jobs (plain text, for the init script)
 *   run JOBFILE INDEX           runs one job, one `job` line (after a `start` line)
 * Exit status 0, or 2 on a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define DUMP_MAX (512 * 1024)

static struct lab_job job; /* large: not on the stack */

static void usage(void)
{
	fprintf(stderr, "usage: cetbench-lab-agent mark NAME | dump text|hex|exists PATH... | "
			"count JOBFILE | run JOBFILE INDEX\n");
	exit(2);
}

/* One MSR through the msr driver: pread(8) at offset INDEX, sent with its offset. */
static void dump_msr(const char *index)
{
	struct jbuf j;
	unsigned long long value = 0, at = strtoull(index, 0, 0);
	int fd = open("/dev/cpu/0/msr", O_RDONLY | O_CLOEXEC);
	int ok = fd >= 0 && pread(fd, &value, sizeof(value), (off_t)at) == (ssize_t)sizeof(value);

	jb_init(&j);
	jb_raw(&j, "{\"path\":\"dev/cpu/0/msr\"");
	if (ok) {
		jb_printf(&j, ",\"encoding\":\"hex\",\"offset\":%llu,\"data\":\"", at);
		for (size_t i = 0; i < sizeof(value); i++)
			jb_printf(&j, "%02x", (unsigned)((value >> (8 * i)) & 0xff));
		jb_raw(&j, "\"}");
	} else {
		jb_key(&j, "error");
		jb_str(&j, strerror(errno), strlen(strerror(errno)));
		jb_raw(&j, "}");
	}
	if (fd >= 0)
		close(fd);
	lab_emit("file", &j);
	jb_free(&j);
}

static void dump_one(const char *mode, const char *path)
{
	static char data[DUMP_MAX];
	struct jbuf j;
	size_t len = 0;
	int fd;

	jb_init(&j);
	jb_raw(&j, "{");
	jb_key(&j, "path");
	jb_str(&j, path + (path[0] == '/'), strlen(path + (path[0] == '/')));
	if (!strcmp(mode, "exists")) {
		jb_printf(&j, ",\"exists\":%s}", access(path, F_OK) == 0 ? "true" : "false");
		lab_emit("file", &j);
		jb_free(&j);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n;

		while (len < sizeof(data) && (n = read(fd, data + len, sizeof(data) - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	if (fd < 0) {
		jb_key(&j, "error");
		jb_str(&j, strerror(errno), strlen(strerror(errno)));
	} else if (!strcmp(mode, "hex")) {
		jb_raw(&j, ",\"encoding\":\"hex\",\"data\":\"");
		for (size_t i = 0; i < len; i++)
			jb_printf(&j, "%02x", (unsigned char)data[i]);
		jb_raw(&j, "\"");
	} else {
		jb_raw(&j, ",\"encoding\":\"text\"");
		jb_key(&j, "data");
		jb_str(&j, data, len);
	}
	jb_raw(&j, "}");
	lab_emit("file", &j);
	jb_free(&j);
}

int main(int argc, char **argv)
{
	char why[600];

	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "mark")) {
		struct jbuf j;

		jb_init(&j);
		jb_raw(&j, "{");
		jb_key(&j, "name");
		jb_str(&j, argv[2], strlen(argv[2]));
		jb_printf(&j, ",\"uptime\":%.3f}", lab_uptime());
		lab_emit("mark", &j);
		return 0;
	}
	if (!strcmp(argv[1], "dump") && argc >= 4 && !strcmp(argv[2], "msr")) {
		for (int i = 3; i < argc; i++)
			dump_msr(argv[i]);
		return 0;
	}
	if (!strcmp(argv[1], "dump") && argc >= 4 &&
	    (!strcmp(argv[2], "text") || !strcmp(argv[2], "hex") || !strcmp(argv[2], "exists"))) {
		for (int i = 3; i < argc; i++)
			dump_one(argv[2], argv[i]);
		return 0;
	}
	if (!strcmp(argv[1], "count")) {
		int n = lab_count_jobs(argv[2]);

		printf("%d\n", n < 0 ? 0 : n);
		return n < 0;
	}
	if (!strcmp(argv[1], "run") && argc == 4) {
		int index = atoi(argv[3]);

		if (lab_load_job(argv[2], index, &job, why, sizeof(why))) {
			struct jbuf j;

			jb_init(&j);
			jb_printf(&j, "{\"id\":null,\"index\":%d", index);
			jb_key(&j, "error");
			jb_str(&j, why, strlen(why));
			jb_raw(&j, "}");
			lab_emit("job", &j);
			return 0;
		}
		return lab_run_job(&job, index);
	}
	usage();
}
