/* Reloading kvm_intel with module parameters (the lab's `kvm_intel cet=0|1` axis). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

int lab_reload_kvm_intel(const char *params, char *why, size_t whylen)
{
	int fd;

	/* O_NONBLOCK: fail at once if /dev/kvm is still in use rather than wait for it. */
	if (syscall(SYS_delete_module, "kvm_intel", O_NONBLOCK) != 0 && errno != ENOENT) {
		snprintf(why, whylen, "rmmod kvm_intel: %s", strerror(errno));
		return -1;
	}
	fd = open(LAB_KVM_INTEL_KO, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "open %s: %s", LAB_KVM_INTEL_KO, strerror(errno));
		return -1;
	}
	if (syscall(SYS_finit_module, fd, params, 0) != 0) {
		snprintf(why, whylen, "insmod kvm-intel.ko %s: %s", params, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void lab_kvm_intel_params(struct jbuf *b)
{
	DIR *d = opendir(LAB_KVM_INTEL_PARAMS);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[512], value[256];
		ssize_t n;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", LAB_KVM_INTEL_PARAMS, e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, value, sizeof(value) - 1);
		close(fd);
		if (n < 0)
			continue;
		while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == ' '))
			n--;
		jb_key(b, e->d_name);
		jb_str(b, value, (size_t)n);
	}
	closedir(d);
}
