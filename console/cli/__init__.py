"""The ``samu`` command line: one entry point, subcommands grouped by package.

Exit codes everywhere: 0 ok, 1 a check failed (bad rows, damaged trail, missed
expectation), 2 usage or input error.
"""

from console.cli._main import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError, build_parser, main

__all__ = ["EXIT_CHECK_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "main"]
