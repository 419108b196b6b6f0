"""Training CellTOSG-FM: edge-masking pretraining, fine-tuning, prediction, embeddings, checkpoints."""

from celltosg.train._checkpoint import build_model, load_checkpoint, save_checkpoint
from celltosg.train._data import CohortLike, InMemoryCohort
from celltosg.train._finetune import FinetuneResult, finetune
from celltosg.train._metrics import classification_metrics, edge_metrics
from celltosg.train._predict import embed, map_anndata, predict, write_result

__all__ = [
    "CohortLike",
    "FinetuneResult",
    "InMemoryCohort",
    "build_model",
    "classification_metrics",
    "edge_metrics",
    "embed",
    "finetune",
    "load_checkpoint",
    "map_anndata",
    "predict",
    "save_checkpoint",
    "write_result",
]
