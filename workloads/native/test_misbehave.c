/* test_misbehave: a test-only workload that fails in the ways a real one can, so the runner's
 * handling of them is tested for real: `--mode ok|crash|hang|fail|big-crash|garbage`.
 * big-crash measures short runs (the preflight) and aborts on long ones (inside pyperf). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "native/cet_arch.h"

int main(int argc, char **argv)
{
	const char *mode = "ok";
	long iterations = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--iterations"))
			iterations = atol(argv[i + 1]);
	}
	if (!strcmp(mode, "crash") || (!strcmp(mode, "big-crash") && iterations > 100))
		abort();
	if (!strcmp(mode, "hang"))
		for (;;)
			pause();
	if (!strcmp(mode, "fail")) {
		printf("{\"error\": \"test failure requested\"}\n");
		return EXIT_FAILED;
	}
	if (!strcmp(mode, "garbage")) {
		printf("not json\n");
		return 0;
	}
	printf("{\"iterations\": %ld, \"elapsed_ns\": %ld, \"tsc_ticks\": %ld, \"cpu\": 0, \"shstk\": \"off\"}\n",
	       iterations, iterations * 100, iterations * 250);
	return EXIT_MEASURED;
}
