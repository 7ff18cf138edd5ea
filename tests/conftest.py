import pytest
import torch

from lth.config import DataConfig, ExperimentConfig, ModelConfig, PruneConfig, TrainConfig
from lth.data import load_dataset

torch.set_num_threads(2)

# Tests parametrized over DEVICES run on CPU everywhere and on the GPU where CUDA is present
# (CI has none; benchmarks/gpu_check.sh runs them on a lent GPU machine).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def mnist1d(tmp_path_factory):
    """MNIST-1D generated once per test session (about 2 s), cached like a store does."""
    return load_dataset("mnist1d", cache_dir=tmp_path_factory.mktemp("cache"))


def tiny_config(**changes) -> ExperimentConfig:
    """A small MLP on MNIST-1D: 60 iterations of batch 50, a fraction of a second per level."""
    base = ExperimentConfig(
        data=DataConfig("mnist1d"),
        model=ModelConfig("mnist1d_mlp", {"hidden": 32}),
        train=TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=50,
                          iterations="60it", eval_every="20it"),
        prune=PruneConfig(fraction=0.2, strategy="layerwise", layer_fractions={"output": 0.1}),
        rewind="10it",
    )
    return base.override(changes) if changes else base


@pytest.fixture
def tiny():
    return tiny_config


def load_study(name: str):
    """A script of studies/ as a module (studies/ is not a package; its scripts import each other by name)."""
    import importlib.util
    import sys
    from pathlib import Path

    studies = Path(__file__).resolve().parent.parent / "studies"
    if str(studies) not in sys.path:
        sys.path.append(str(studies))
    spec = importlib.util.spec_from_file_location(name, studies / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
