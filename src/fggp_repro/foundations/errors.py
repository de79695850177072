"""Errors a user can fix: the command line prints their message on one line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""


class ConfigError(UserError):
    """A configuration value is out of range or inconsistent with another."""


class DataError(UserError):
    """A dataset is missing, unreadable or cannot be downloaded."""


class ResultsError(UserError):
    """A results file or checkpoint is corrupt or unreadable."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message ("" for none): what a one-line report quotes of a
    library's several-line message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
