"""Native workloads (C/asm) and the table of what the suite measures. Knows nothing of pyperf."""
