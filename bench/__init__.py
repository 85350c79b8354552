"""cetbench's harness: the CLI, the host probe and the runner."""

__version__ = "0.1.0"
