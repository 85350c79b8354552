/* cetbench-probe: print the raw facts `cetbench probe` judges, as one JSON object.
 *
 * Host CPUID leaves are read with the CPUID instruction itself, so the probe depends neither on
 * /proc/cpuinfo (which shows what the kernel enabled, not what the CPU has) nor on the cpuid module.
 * KVM's view comes from the ioctls userspace VMMs use: KVM_GET_API_VERSION and
 * KVM_GET_SUPPORTED_CPUID. The probe only reports; every verdict is made in bench/probe_*.py.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct leaf { unsigned int leaf, subleaf; };

/* The leaves the probe interprets: vendor and maximum leaf, family/model and XSAVE, CET bits in 7.0,
 * XSAVE/XSS enumeration in 0xD.0/0xD.1, and the brand string. */
static const struct leaf host_leaves[] = {
	{0, 0}, {1, 0}, {7, 0}, {0xD, 0}, {0xD, 1},
	{0x80000000u, 0}, {0x80000002u, 0}, {0x80000003u, 0}, {0x80000004u, 0},
};

static void print_cpuid(void)
{
	unsigned int max_basic = __get_cpuid_max(0, NULL), max_ext = __get_cpuid_max(0x80000000u, NULL);
	int first = 1;

	printf("\"cpuid\":[");
	for (size_t i = 0; i < sizeof(host_leaves) / sizeof(host_leaves[0]); i++) {
		unsigned int a, b, c, d, l = host_leaves[i].leaf;
		if ((l < 0x80000000u && l > max_basic) || (l >= 0x80000000u && l > max_ext))
			continue;
		__cpuid_count(l, host_leaves[i].subleaf, a, b, c, d);
		printf("%s{\"leaf\":%u,\"subleaf\":%u,\"eax\":%u,\"ebx\":%u,\"ecx\":%u,\"edx\":%u}",
		       first ? "" : ",", l, host_leaves[i].subleaf, a, b, c, d);
		first = 0;
	}
	printf("]");
}

static void print_kvm_error(const char *what, int err)
{
	printf("\"kvm\":{\"device\":\"/dev/kvm\",\"error\":\"%s: %s\",\"errno\":%d}", what, strerror(err), err);
}

static void print_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		print_kvm_error("open /dev/kvm", errno);
		return;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api < 0) {
		print_kvm_error("KVM_GET_API_VERSION", errno);
		close(fd);
		return;
	}
	/* KVM answers E2BIG while the buffer is too small: grow until it fits. */
	struct kvm_cpuid2 *cpuid = NULL;
	for (unsigned int nent = 64; nent <= 4096; nent *= 2) {
		free(cpuid);
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
		if (!cpuid)
			abort();
		cpuid->nent = nent;
		if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		if (errno != E2BIG) {
			print_kvm_error("KVM_GET_SUPPORTED_CPUID", errno);
			free(cpuid);
			close(fd);
			return;
		}
		cpuid->nent = 0;
	}
	printf("\"kvm\":{\"device\":\"/dev/kvm\",\"error\":null,\"errno\":null,\"api_version\":%d,"
	       "\"supported_cpuid\":[", api);
	for (unsigned int i = 0; cpuid && i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		printf("%s{\"leaf\":%u,\"subleaf\":%u,\"eax\":%u,\"ebx\":%u,\"ecx\":%u,\"edx\":%u}",
		       i ? "," : "", e->function, e->index, e->eax, e->ebx, e->ecx, e->edx);
	}
	printf("]}");
	free(cpuid);
	close(fd);
}

int main(void)
{
	printf("{");
	print_cpuid();
	printf(",");
	print_kvm();
	printf("}\n");
	return 0;
}
