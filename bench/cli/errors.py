"""Exit codes and the one rule that maps what went wrong to them (README "Exit codes").

Commands raise; `exit_code_for` decides, once, what the user sees: one line on stderr and a code,
never a traceback for bad input or an unusable environment.
"""

from __future__ import annotations

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


class CommandError(Exception):
    """What a command could not do, said in one line, with the exit code it calls for."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of an exception a command raised, or None when it is a bug (let it show)."""
    from cetbench import results
    from cetbench.analysis import AnalysisInputError
    from cetbench.bisect_git import BisectInputError, BisectStopped
    from cetbench.results.bundle import BundleError
    from cetbench.runner import RunError, RunInterrupted
    from cetbench.selection import SelectionError
    from cetbench.workloads.build import BuildError
    from cetbench.workloads.variants import UnknownVariantError, VariantNameError

    if isinstance(exc, CommandError):
        return exc.code
    if isinstance(exc, RunInterrupted):  # as a shell reports a process the signal ended: 143 for SIGTERM
        return 128 + exc.signum
    # usage or input: the user can fix what they typed or pointed at
    usage = (results.RunNotFound, results.InputError, BundleError, RunError, SelectionError, AnalysisInputError,
             VariantNameError, UnknownVariantError, BisectInputError)
    if isinstance(exc, usage):
        return EXIT_USAGE
    if isinstance(exc, OSError):  # a path the user named, or the machine itself
        return EXIT_USAGE if exc.filename else EXIT_ENVIRONMENT
    # the environment cannot do what was asked: a store, a compiler, a hook; a bisect with no answer
    if isinstance(exc, results.StoreError | BuildError | BisectStopped):
        return EXIT_ENVIRONMENT
    return None
