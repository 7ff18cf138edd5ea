"""The model zoo: importing this package registers every family."""
from . import conv, lenet, mlp, resnet1d, resnet_cifar, resnet_imagenet, vgg  # noqa: F401  (registration side effects)
from .registry import MODELS, build_model, parameter_count, register, resolve

__all__ = ["MODELS", "build_model", "parameter_count", "register", "resolve"]
