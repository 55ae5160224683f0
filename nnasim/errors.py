"""The one error type nnasim raises for bad input, with a subclass per kind.

The CLI prints ``str(error)`` on one line to stderr and exits with code 2.
"""


class NnasimError(Exception):
    """A problem with what the user gave nnasim; the message says what and where."""


class ModelError(NnasimError):
    """A model file or graph nnasim cannot read or run."""


class GraphError(ModelError):
    """A graph that breaks an invariant of the IR (a tensor read before it exists, two producers)."""


class ProfileError(NnasimError):
    """A hardware profile that is missing, malformed or inconsistent."""


class DataError(NnasimError):
    """Input or calibration data that cannot be read or does not fit the model."""


class UsageError(NnasimError):
    """Options that contradict each other or are out of range."""


class NnasimWarning(UserWarning):
    """Something the user should know that does not stop the run (a float island, saturations)."""
