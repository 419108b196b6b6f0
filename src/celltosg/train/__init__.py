"""Training CellTOSG-FM: edge-masking pretraining, fine-tuning, prediction, embeddings, checkpoints, and the
one training engine (:func:`fit`) that every torch model of the project trains with."""

from celltosg.recipe import RECIPE, Recipe
from celltosg.train._checkpoint import build_model, load_checkpoint, load_pack, save_checkpoint
from celltosg.train._classify import ClassifierPlan, class_weights, input_batches, predict_logits
from celltosg.train._data import CohortLike, InMemoryCohort, input_scaling
from celltosg.train._donors import donor_calls
from celltosg.train._engine import (
    FitResult,
    FitSettings,
    Plan,
    default_device,
    epoch_generator,
    fit,
    seeded,
    tensor_batches,
    train_one_epoch,
)
from celltosg.train._finetune import FinetuneResult, finetune
from celltosg.train._graph import build_graph_inputs
from celltosg.train._metrics import accuracy, classification_metrics, macro_f1
from celltosg.train._predict import (
    check_anndata,
    check_donor_key,
    embed,
    map_anndata,
    predict,
    write_donor_calls,
    write_result,
)
from celltosg.train._pretrain import PretrainResult, pretrain

__all__ = [
    "ClassifierPlan",
    "CohortLike",
    "FinetuneResult",
    "FitResult",
    "FitSettings",
    "InMemoryCohort",
    "Plan",
    "PretrainResult",
    "RECIPE",
    "Recipe",
    "accuracy",
    "build_graph_inputs",
    "build_model",
    "check_anndata",
    "check_donor_key",
    "class_weights",
    "classification_metrics",
    "default_device",
    "donor_calls",
    "embed",
    "epoch_generator",
    "finetune",
    "fit",
    "input_batches",
    "input_scaling",
    "load_checkpoint",
    "load_pack",
    "macro_f1",
    "map_anndata",
    "predict",
    "predict_logits",
    "pretrain",
    "save_checkpoint",
    "seeded",
    "tensor_batches",
    "train_one_epoch",
    "write_donor_calls",
    "write_result",
]
