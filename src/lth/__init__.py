"""lth: lottery tickets at scale — IMP with rewinding, baselines, stability analysis."""
from .config import DataConfig, ExperimentConfig, ModelConfig, PruneConfig, TrainConfig, config_hash
from .errors import LthError
from .api import measure_stability, run_branch, run_imp, stability_sweep
from .export import export_ticket, load_ticket
from .levels import ImpResult, RunResult
from .masks import Mask, magnitude_prune, random_prune
from .models import build_model
from .steps import Step
from .store import Store
from .train import train, train_replicas

__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "PruneConfig", "TrainConfig", "config_hash",
           "LthError", "ImpResult", "RunResult", "run_imp", "Mask", "magnitude_prune", "random_prune", "build_model",
           "Step", "Store", "train", "train_replicas", "run_branch", "export_ticket", "load_ticket",
           "measure_stability", "stability_sweep"]
__version__ = "0.1.0"
