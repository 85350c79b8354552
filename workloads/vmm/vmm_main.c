/* cetbench-vmm: run one cetbench guest workload on /dev/kvm and print one JSON line.
 *
 *   cetbench-vmm --guest IMAGE --workload NAME [--cet none|ibt|shstk|ibt+shstk] [--cetu live|init|off]
 *                --iterations N
 *                [--inject-cycles K] [--cpu C] [--timeout-s S] [--msr INDEX]
 *                [--ignore-kvm-limits] [--kvm-device PATH]
 *   cetbench-vmm --explain --workload NAME [--cet ...] [--vendor intel|amd]
 *
 * Exit status (native/cet_arch.h): 0 measured, 2 bad arguments (one line on stderr),
 * 3 unsupported (KVM, the CPU or the kernel does not offer it: the reason in its terms),
 * 4 failed (guest exception, triple fault, timeout, unexpected exit ...).
 * Built from the .c files here with the common flags, the guest image from guest/
 * (both recipes: tests/vmm_fixtures.py).
 */
#define _GNU_SOURCE  /* sched_setaffinity, CPU_SET */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

/* The loaders all write these structs: their layout is part of the guest ABI. */
_Static_assert(sizeof(struct guest_params) == 72, "struct guest_params layout changed");
_Static_assert(sizeof(struct guest_result) <= 0x1000, "struct guest_result must fit its page");
/* Fields are only appended: the ones before the after-loop readback keep their offsets. */
_Static_assert(offsetof(struct guest_result, detail) == 144, "struct guest_result layout changed");
_Static_assert(offsetof(struct guest_result, after_valid) == 272, "struct guest_result layout changed");
_Static_assert(offsetof(struct guest_result, cetu_state) == 344, "struct guest_result layout changed");
_Static_assert(sizeof(struct guest_result) == 352, "struct guest_result layout changed");

#define ROW(id_, name_, ring_, exit_, setup_, op_, run_, what_) { id_, name_, ring_, exit_, what_ },
const struct workload_info workload_table[] = { GUEST_WORKLOADS(ROW) };
#undef ROW
const size_t workload_count = sizeof(workload_table) / sizeof(workload_table[0]);

const struct workload_info *workload_by_name(const char *name)
{
	for (size_t i = 0; i < workload_count; i++)
		if (!strcmp(workload_table[i].name, name))
			return &workload_table[i];
	return NULL;
}

static __attribute__((noreturn)) void usage_error(const char *fmt, const char *arg)
{
	fputs("cetbench-vmm: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v > max)
		usage_error("bad number for %s", opt);
	return v;
}

static int parse_cet(const char *s)
{
	for (uint32_t c = 0; c < 4; c++)
		if (!strcmp(s, cet_name(c)))
			return (int)c;
	if (!strcmp(s, "shstk+ibt"))
		return GUEST_CET_IBT | GUEST_CET_SHSTK;
	usage_error("--cet must be none, ibt, shstk or ibt+shstk, not '%s'", s);
}

static uint32_t parse_cetu(const char *s)
{
	for (uint32_t c = CETU_LIVE; c <= CETU_OFF; c++)
		if (!strcmp(s, cetu_name(c)))
			return c;
	usage_error("--cetu must be live, init or off, not '%s'", s);
}

static void parse_args(int argc, char **argv, struct vmm_opts *o)
{
	static const struct option longopts[] = {
		{ "guest", required_argument, 0, 'g' }, { "workload", required_argument, 0, 'w' },
		{ "cet", required_argument, 0, 'c' }, { "iterations", required_argument, 0, 'n' },
		{ "inject-cycles", required_argument, 0, 'k' }, { "cpu", required_argument, 0, 'p' },
		{ "timeout-s", required_argument, 0, 't' }, { "msr", required_argument, 0, 'm' },
		{ "explain", no_argument, 0, 'e' }, { "vendor", required_argument, 0, 'v' },
		{ "ignore-kvm-limits", no_argument, 0, 'i' }, { "kvm-device", required_argument, 0, 'd' },
		{ "cetu", required_argument, 0, 'u' }, { "xss", required_argument, 0, 'x' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	int c, have_n = 0;

	memset(o, 0, sizeof(*o));
	o->cpu = -1;
	o->kvm_dev = "/dev/kvm";
	o->msr_index = MSR_IA32_APICBASE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'g': o->guest_path = optarg; break;
		case 'w':
			o->wl = workload_by_name(optarg);
			if (!o->wl)
				usage_error("unknown workload '%s'", optarg);
			break;
		case 'c': o->cet = (uint32_t)parse_cet(optarg); break;
		case 'u': o->cetu = parse_cetu(optarg); break;
		case 'x':
			if (strcmp(optarg, "host"))
				usage_error("--xss takes host, not '%s'", optarg);
			o->xss_host = 1;
			break;
		case 'n': o->iterations = parse_u64("--iterations", optarg, UINT64_MAX); have_n = 1; break;
		case 'k': o->inject_cycles = parse_u64("--inject-cycles", optarg, UINT32_MAX); break;
		case 'p':
			o->cpu = !strcmp(optarg, "-1") ? -1 : (int)parse_u64("--cpu", optarg, CPU_SETSIZE - 1);
			break;
		case 't': o->timeout_s = (unsigned)parse_u64("--timeout-s", optarg, 86400); break;
		case 'm': o->msr_index = (uint32_t)parse_u64("--msr", optarg, UINT32_MAX); break;
		case 'e': o->explain = 1; break;
		case 'i': o->ignore_kvm_limits = 1; break;
		case 'd': o->kvm_dev = optarg; break;
		case 'v':
			if (!strcmp(optarg, "intel"))
				o->vendor_override = VENDOR_INTEL;
			else if (!strcmp(optarg, "amd"))
				o->vendor_override = VENDOR_AMD;
			else
				usage_error("--vendor must be intel or amd, not '%s'", optarg);
			break;
		case 'h':
			puts("usage: cetbench-vmm --guest IMAGE --workload NAME [--cet none|ibt|shstk|ibt+shstk]"
			     " [--cetu live|init|off] [--xss host]\n"
			     "                    --iterations N [--inject-cycles K] [--cpu C] [--timeout-s S] [--msr INDEX]\n"
			     "                    [--ignore-kvm-limits] [--kvm-device PATH]\n"
			     "       cetbench-vmm --explain --workload NAME [--cet CFG] [--vendor intel|amd]");
			exit(0);
		default:
			usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->wl)
		usage_error("%s", "--workload is required");
	if (o->cetu && !(o->cet & GUEST_CET_SHSTK))
		usage_error("%s", "--cetu needs --cet with shstk (without it CET_USER is always in its init state)");
	if (o->explain) {
		if (!have_n)
			o->iterations = 1;
		return;
	}
	if (o->vendor_override)
		usage_error("%s", "--vendor is only for --explain (a run uses the CPU's own vendor)");
	if (!o->guest_path)
		usage_error("%s", "--guest is required");
	if (!have_n || o->iterations < 1)
		usage_error("%s", "--iterations N (N >= 1) is required");
}

static __attribute__((noreturn)) void unsupported(const struct vmm_opts *o, const char *why,
						  const char *refused_by)
{
	struct json j;

	json_begin(&j, stdout);
	json_str(&j, "unsupported", why);
	json_str(&j, "refused_by", refused_by);
	json_str(&j, "cet", cet_name(o->cet));
	json_str(&j, "workload", o->wl->name);
	json_end(&j);
	exit(EXIT_UNSUPPORTED);
}

static size_t read_image(const char *path, uint8_t **out)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(GUEST_IMAGE_MAX_BYTES + 1);
	size_t n;

	if (!f || !buf)
		usage_error("cannot read the guest image '%s'", path);
	n = fread(buf, 1, GUEST_IMAGE_MAX_BYTES + 1, f);
	fclose(f);
	if (n == 0 || n > GUEST_IMAGE_MAX_BYTES)
		usage_error("guest image '%s' is empty or larger than GUEST_IMAGE_MAX_BYTES", path);
	*out = buf;
	return n;
}

int main(int argc, char **argv)
{
	struct vmm_opts o;
	struct kvm_cpuid2 *cpuid;
	struct guest_params params;
	struct run_stats st;
	struct guest_cpuid_view view;
	struct vm vm;
	const char *err, *refused_by;
	char why[512];
	uint8_t *image;
	size_t image_len;
	int kvm, vendor;
	enum run_end end;

	parse_args(argc, argv, &o);
	if (o.explain)
		return explain(&o);

	kvm = open(o.kvm_dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		int e = errno;
		snprintf(why, sizeof(why), "cannot open %s: %s (%s)", o.kvm_dev, strerror(e),
			 e == ENOENT ? "ENOENT" : e == EACCES ? "EACCES" : e == EPERM ? "EPERM" : "errno");
		unsupported(&o, why, "kernel");
	}
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(why, sizeof(why), "KVM_GET_API_VERSION is not %d", KVM_API_VERSION);
		unsupported(&o, why, "kernel");
	}
	cpuid = cpuid_supported(kvm);
	if (!cpuid) {
		snprintf(why, sizeof(why), "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
		unsupported(&o, why, "kvm");
	}
	vendor = cpuid_vendor(cpuid);
	if (!vendor)
		unsupported(&o, "CPU vendor is neither GenuineIntel nor AuthenticAMD (CPUID.0)", "cpu");
	/* --ignore-kvm-limits runs it anyway: the guest must then refuse (SETUP_FAILED) or fault,
	 * never run with CET silently off. */
	if (cpuid_check_cet(cpuid, o.cet, vendor, why, sizeof(why), &refused_by) && !o.ignore_kvm_limits)
		unsupported(&o, why, refused_by);
	if (!strcmp(kvm_module(), "kvm_pvm") && kvm_pvm_refusal(o.wl) && !o.ignore_kvm_limits)
		unsupported(&o, kvm_pvm_refusal(o.wl), "kvm");
	cpuid_apply_cet(cpuid, o.cet);
	cpuid_view(cpuid, &view);
	if (workload_needs_xsaves(o.wl) && cet_setup_save_method(&view) != SAVE_XSAVES && !o.ignore_kvm_limits)
		unsupported(&o, "KVM does not offer XSAVES: KVM_GET_SUPPORTED_CPUID CPUID.D.1:EAX[3]=0 (or XSAVE in "
			    "CPUID.1:ECX[26])", "kvm");

	image_len = read_image(o.guest_path, &image);
	if (o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			snprintf(why, sizeof(why), "--cpu %d: sched_setaffinity: %s", o.cpu, strerror(errno));
			usage_error("%s", why);
		}
	}

	memset(&params, 0, sizeof(params));
	params.magic = GUEST_PARAMS_MAGIC;
	params.abi_version = GUEST_ABI_VERSION;
	params.platform = PLATFORM_KVM;
	params.vendor = (uint32_t)vendor;
	params.workload = o.wl->id;
	params.cet = o.cet;
	params.cetu = o.cetu;
	if (o.xss_host) {
		uint64_t xss;
		int e = host_xss(o.cpu, &xss);
		if (e) {
			snprintf(why, sizeof(why), "xss=host: cannot read the host's IA32_XSS from /dev/cpu/%d/msr: %s "
				 "(needs root and the msr module)", o.cpu < 0 ? 0 : o.cpu, strerror(e));
			unsupported(&o, why, "host");
		}
		params.xss_set = 1;
		params.xss_value = (uint32_t)xss;
	}
	params.iterations = o.iterations;
	params.inject_cycles = o.inject_cycles;
	params.msr_index = o.msr_index;
	/* The guest picks its state-save instruction from its CPUID, capped at what the CPUID we set
	 * offers: a KVM that forces XSAVE bits on without emulating them cannot break the run. */
	params.save_method_max = cet_setup_save_method(&view);
	memset(&st, 0, sizeof(st));
	err = vm_create(&vm, kvm, cpuid, image, image_len, &params);
	if (err) {
		struct json j;
		json_begin(&j, stdout);
		json_str(&j, "error", "KVM setup failed");
		json_str(&j, "ioctl", err);
		json_str(&j, "errno", strerror(errno));
		json_end(&j);
		return EXIT_FAILED;
	}
	st.n_overrides = cpuid_overrides(vm.vcpu, cpuid, st.overrides, 6);
	end = vm_run(&vm, &st, o.timeout_s);
	return report(&o, vendor, end, &st, vm_result(&vm));
}
