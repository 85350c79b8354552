"""The freestanding guest (C/asm) and, under bochs/, the loader that boots it on an emulated CET CPU."""
