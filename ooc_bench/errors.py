"""Exception types that the CLI turns into clear one-line messages (no traceback, non-zero exit)."""


class OocBenchError(Exception):
    """Base class: a problem the user can fix. The message names the file or option and what to do."""

    exit_code = 2


class UserInputError(OocBenchError):
    """Bad input: a missing path, an unreadable image, an unknown name, an invalid option value."""


class LeakageError(OocBenchError):
    """A held-out (val/test) image was about to be used for fitting a generator or training a classifier."""

    exit_code = 3


class WeightsUnavailableError(OocBenchError):
    """Pretrained weights could not be found locally and could not be downloaded."""
