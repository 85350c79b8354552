/* test_shstk_violation: a test-only program that proves a shadow-stack violation is caught. It
 * enables the user shadow stack (inline arch_prctl in main, like the host workloads), then forks
 * two children that overwrite their own return address and RET:
 *   - one with a SA_SIGINFO SIGSEGV handler, which reports the signal's si_code (SEGV_CPERR);
 *   - one without, which the kernel must kill with SIGSEGV.
 * Without a shadow stack the RET "succeeds" and the child exits NOT_CAUGHT.
 * Prints one JSON line; exits 0 when both were caught as #CP, 3 when the kernel refuses shadow
 * stacks, 4 otherwise. `--iterations N` is accepted (and ignored) for the native protocol. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/common.h"

#define NOT_CAUGHT 99

/* Replaces its own return address with smash_landing and returns: with a shadow stack the RET
 * raises #CP (error code 1, near RET); without one it lands and exits NOT_CAUGHT. */
void smash_return(void);
__asm__(".text\n"
	".globl smash_return\n"
	".type smash_return,@function\n"
	"smash_return:\n"
	"    endbr64\n"
	"    leaq smash_landing(%rip), %rax\n"
	"    movq %rax, (%rsp)\n"
	"    ret\n"
	"smash_landing:\n"
	"    endbr64\n"
	"    movl $231, %eax\n" /* exit_group(NOT_CAUGHT) */
	"    movl $99, %edi\n"
	"    syscall\n"
	"    hlt\n");

static int report_fd = -1;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	int code = si->si_code;

	(void)sig;
	(void)uc;
	if (write(report_fd, &code, sizeof(code)) < 0)
		CB_SYSCALL3(SYS_exit_group, 2, 0, 0);
	CB_SYSCALL3(SYS_exit_group, 0, 0, 0);
}

/* Forks a child that smashes its return address; fills how it ended. */
static void violation(int with_handler, siginfo_t *end, int *si_code)
{
	int p[2];
	pid_t pid;

	*si_code = -1;
	memset(end, 0, sizeof(*end));
	if (pipe(p))
		cb_failed_exit("pipe failed");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		cb_failed_exit("fork failed");
	if (pid == 0) {
		if (with_handler) {
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_sigaction = on_segv;
			sa.sa_flags = SA_SIGINFO;
			report_fd = p[1];
			sigaction(SIGSEGV, &sa, NULL);
		}
		smash_return();
		CB_SYSCALL3(SYS_exit_group, 3, 0, 0); /* not reached */
	}
	close(p[1]);
	if (waitid(P_PID, (id_t)pid, end, WEXITED))
		cb_failed_exit("waitid failed");
	if (read(p[0], si_code, sizeof(*si_code)) != (ssize_t)sizeof(*si_code))
		*si_code = -1;
	close(p[0]);
}

static const char *how(const siginfo_t *e)
{
	return e->si_code == CLD_EXITED ? "exited" : e->si_code == CLD_KILLED ? "killed" :
	       e->si_code == CLD_DUMPED ? "dumped" : "other";
}

int main(int argc, char **argv)
{
	siginfo_t with, without;
	int code, dummy, caught, killed;

	(void)argc;
	(void)argv;
	cb_shstk_confirm(CB_SHSTK_ENABLE_INLINE());
	/* From here main never returns: leave through cb_exit. */
	violation(1, &with, &code);
	violation(0, &without, &dummy);
	caught = with.si_code == CLD_EXITED && with.si_status == 0 && code == SEGV_CPERR_CODE;
	killed = (without.si_code == CLD_KILLED || without.si_code == CLD_DUMPED) && without.si_status == SIGSEGV;
	printf("{\"shstk\": \"on\", \"ssp\": \"0x%llx\", \"handler\": {\"child\": \"%s\", \"status\": %d, \"si_code\": %d, "
	       "\"segv_cperr\": %s}, \"no_handler\": {\"child\": \"%s\", \"status\": %d, \"not_caught\": %s}, "
	       "\"caught\": %s}\n",
	       (unsigned long long)cb_read_ssp(), how(&with), with.si_status, code, caught ? "true" : "false",
	       how(&without), without.si_status,
	       without.si_code == CLD_EXITED && without.si_status == NOT_CAUGHT ? "true" : "false",
	       caught && killed ? "true" : "false");
	cb_exit(caught && killed ? EXIT_MEASURED : EXIT_FAILED);
}
