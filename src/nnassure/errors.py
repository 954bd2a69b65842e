"""Exceptions whose message is shown to the user as a one-line error by the stage entry points."""


class NnassureError(Exception):
    """An error caused by the user's input (config, data or model file), not by a bug."""


class ConfigError(NnassureError):
    """A config key, type or value is not allowed."""


class InputFileError(NnassureError):
    """An input file is missing, unreadable or does not have the expected content."""
