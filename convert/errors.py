"""The two ways a conversion stops early, each with its exit status.

Both carry a one-line message meant for the user; the CLI prints it without a traceback
and leaves no output file behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convert.report import Report

EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 3


class ConvertError(Exception):
    """Bad input or a conversion TensorFlow refuses (exit status 2)."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CheckFailed(ConvertError):
    """The .tflite was made but fails a check: it does not run in the serving runtime, or
    it misses ``--min-agreement`` (exit status 3). ``report`` holds what was measured."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report
