"""The two ways a conversion stops early, each with its exit status.

Both carry a one-line message meant for the user; the CLI prints it without a traceback
and leaves no output file behind. :class:`ConvertError` is here (every module raises it,
so this module imports nothing of ``convert/``); :class:`convert.report.CheckFailed`
carries the report beside it.
"""

from __future__ import annotations

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
