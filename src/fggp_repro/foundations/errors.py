"""Errors a user can fix: the command line prints their message on one line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""


class ConfigError(UserError):
    """A configuration value is out of range or inconsistent with another."""


class DataError(UserError):
    """A dataset is missing, unreadable or cannot be downloaded."""


class ResultsError(UserError):
    """A results file or checkpoint is corrupt or unreadable."""
