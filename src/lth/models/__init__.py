"""The model zoo: importing this package registers every family."""
from . import lenet, mlp  # noqa: F401  (registration side effects)
from .registry import MODELS, build_model, parameter_count, register, resolve

__all__ = ["MODELS", "build_model", "parameter_count", "register", "resolve"]
