"""Errors a user can act on. CLIs print their message and exit 2; libraries raise them."""


class MossError(Exception):
    """Base: the message says what is wrong and what to do."""


class AudioError(MossError, ValueError):
    """Audio that cannot be read or represented."""


class BundleError(MossError):
    """A bundle that is missing files, corrupt, or from another model or schema."""


class CheckpointError(MossError):
    """A checkpoint with a missing, misshapen or unexpected tensor or config entry."""


class PromptError(MossError, ValueError):
    """A prompt that does not fit the context or the options."""


class MissingDependencyError(MossError, ImportError):
    """An optional package is needed for this call; the message names the extra to install."""


class EncoderOverflow(MossError, ArithmeticError):
    """The encoder gave non-finite features: a reduced-precision graph overflowed on this audio."""


class OptionsError(MossError, ValueError):
    """An option value out of its range."""
