"""Exceptions that jaggy raises for problems the user can fix."""


class JaggyError(Exception):
    """A problem with the user's input or environment; the message says what to do."""


class ModelSpecError(JaggyError):
    """A model spec that cannot be resolved (unknown, or needs a download)."""


class DataError(JaggyError):
    """Image sources that cannot be used (missing, empty, badly labelled)."""


class ArgumentError(JaggyError):
    """An argument that is invalid on its own or for this model."""


class RunMismatchError(ArgumentError):
    """A run folder holds a run made with other arguments than the ones given now."""
