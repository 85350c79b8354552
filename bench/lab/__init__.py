"""The emulated CET lab: Debian's own CET-capable kernel booted on bochs 3.0 `tigerlake`, the suite's
native programs inside, results back over the serial console (docs/lab.md)."""
