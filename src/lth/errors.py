"""Errors a user can cause. The CLI turns every LthError into one line on stderr and exit code 2."""


class LthError(Exception):
    """Base class: the message says what went wrong and what to do."""


class ConfigError(LthError):
    """An unknown preset, model or key, or a value out of range."""


class StepError(ConfigError):
    """A step string that is not '<n>it' or '<n>ep', or a step past the end of training."""


class DataError(LthError):
    """A dataset file that is missing, truncated or in the wrong format."""


class StoreError(LthError):
    """A store that cannot be written, or a stored file that is corrupt."""


class TrainingDiverged(LthError):
    """The loss became NaN or infinite."""


class ReplicasDiverged(TrainingDiverged):
    """Some of a stacked group's replicas diverged; they are marked failed, the others finished."""
