/* Everything that depends on which loader runs the guest (abi.h enum guest_platform):
 *   PLATFORM_KVM:   log bytes to PORT_LOG; the result stays in memory and OUT PORT_DONE stops the VMM.
 *   PLATFORM_BOCHS: log bytes to bochs's port 0xE9; the result is printed there as one
 *                   "CETBENCH-RESULT ..." line, then "Shutdown" to port 0x8900 ends bochs.
 *                   There is no hypervisor, so the VM-exit workloads time an empty op. */
#include "guest.h"

static int on_bochs(void)
{
	return g.params.platform == PLATFORM_BOCHS;
}

int platform_has_hypervisor(void)
{
	return !on_bochs();
}

static void put_char(char c)
{
	outb(on_bochs() ? BOCHS_PORT_DEBUG : PORT_LOG, (uint8_t)c);
}

void log_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

void log_hex(uint64_t v)
{
	char buf[19];

	log_str(format_hex(v, buf));
}

static void log_dec(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	log_str(buf + i);
}

void phase_mark(uint32_t phase)
{
	outb(PORT_PHASE, (uint8_t)phase);
}

static void field_dec(const char *k, uint64_t v)
{
	log_str(" ");
	log_str(k);
	log_str("=");
	log_dec(v);
}

static void field_hex(const char *k, uint64_t v)
{
	log_str(" ");
	log_str(k);
	log_str("=");
	log_hex(v);
}

/* The whole struct guest_result as the one line the bochs runner parses. */
static void print_result_line(const struct guest_result *r)
{
	log_str(GUEST_RESULT_LINE_TAG);
	field_dec("status", r->status);
	field_dec("cet_active", r->cet_active);
	field_dec("ops", r->ops);
	field_dec("vector", r->vector);
	field_dec("error_code", r->error_code);
	field_hex("fault_rip", r->fault_rip);
	field_hex("cr0", r->cr0);
	field_hex("cr4", r->cr4);
	field_hex("efer", r->efer);
	field_hex("xss", r->xss);
	field_hex("u_cet", r->u_cet);
	field_hex("s_cet", r->s_cet);
	field_hex("pl3_ssp", r->pl3_ssp);
	field_hex("ssp", r->ssp);
	field_hex("cpuid7_ecx", r->cpuid7_ecx);
	field_hex("cpuid7_edx", r->cpuid7_edx);
	field_hex("cpuid_d1_eax", r->cpuid_d1_eax);
	field_hex("cpuid_d1_ecx", r->cpuid_d1_ecx);
	field_dec("save_method", r->save_method);
	field_dec("cetu_state", r->cetu_state);
	field_dec("cet_active_before", r->cet_active_before);
	field_dec("after_valid", r->after_valid);
	field_dec("cet_active_after", r->cet_active_after);
	field_dec("after_tasks", r->after_tasks);
	field_hex("cr4_after", r->cr4_after);
	field_hex("xss_after", r->xss_after);
	field_hex("u_cet_after", r->u_cet_after);
	field_hex("s_cet_after", r->s_cet_after);
	field_hex("pl3_ssp_after", r->pl3_ssp_after);
	field_hex("ssp_after0", r->ssp_after[0]);
	field_hex("ssp_after1", r->ssp_after[1]);
	log_str(" detail=\"");
	for (const char *s = r->detail; *s && s < r->detail + sizeof(r->detail); s++)
		put_char(*s == '"' || *s == '\\' ? '\'' : *s);
	log_str("\"\n");
}

void guest_finish(void)
{
	if (on_bochs()) {
		print_result_line(RESULT);
		for (const char *s = "Shutdown"; *s; s++)
			outb(BOCHS_PORT_SHUTDOWN, (uint8_t)*s);
	} else {
		outb(PORT_DONE, 1);
	}
	for (;;)
		__asm__ volatile("cli; hlt");
}
