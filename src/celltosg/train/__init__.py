"""Training CellTOSG-FM: edge-masking pretraining, fine-tuning, prediction, embeddings, checkpoints."""

from celltosg.recipe import RECIPE, Recipe
from celltosg.train._checkpoint import build_model, load_checkpoint, save_checkpoint
from celltosg.train._data import CohortLike, InMemoryCohort
from celltosg.train._finetune import FinetuneResult, finetune
from celltosg.train._graph import build_graph_inputs
from celltosg.train._metrics import classification_metrics
from celltosg.train._predict import embed, map_anndata, predict, write_result
from celltosg.train._pretrain import PretrainResult, pretrain

__all__ = [
    "CohortLike",
    "FinetuneResult",
    "InMemoryCohort",
    "PretrainResult",
    "RECIPE",
    "Recipe",
    "build_graph_inputs",
    "build_model",
    "classification_metrics",
    "embed",
    "finetune",
    "load_checkpoint",
    "map_anndata",
    "predict",
    "pretrain",
    "save_checkpoint",
    "write_result",
]
