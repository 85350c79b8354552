"""Boot the cetbench guest image under bochs (emulated CET CPU): floppy image builder and runner."""
