"""Baseline cell classifiers behind one interface (:class:`Classifier`)."""

from celltosg.baselines._base import Classifier
from celltosg.baselines._celltypist import CellTypistClassifier
from celltosg.baselines._fm import CellTOSGFMClassifier, PretrainCache, ReferenceFMClassifier
from celltosg.baselines._gnn import GNN_KINDS, GNNClassifier
from celltosg.baselines._logreg import LogisticRegressionClassifier
from celltosg.baselines._metrics import accuracy, macro_f1
from celltosg.baselines._mlp import MLPClassifier
from celltosg.baselines._torch_fit import TorchFitConfig

__all__ = [
    "CellTOSGFMClassifier",
    "PretrainCache",
    "ReferenceFMClassifier",
    "GNN_KINDS",
    "GNNClassifier",
    "CellTypistClassifier",
    "Classifier",
    "LogisticRegressionClassifier",
    "MLPClassifier",
    "TorchFitConfig",
    "accuracy",
    "macro_f1",
]
