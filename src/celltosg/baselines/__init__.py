"""Baseline cell classifiers behind one interface (:class:`Classifier`)."""

from celltosg.baselines._base import Classifier
from celltosg.baselines._celltypist import CellTypistClassifier
from celltosg.baselines._fm import CellTOSGFMClassifier, PretrainCache, ReferenceFMClassifier
from celltosg.baselines._gnn import GNN_KINDS, GNNClassifier
from celltosg.baselines._logreg import LogisticRegressionClassifier
from celltosg.baselines._mlp import MLPClassifier
from celltosg.baselines._torch import TorchClassifier, TorchFitConfig
from celltosg.train import accuracy, macro_f1

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
    "TorchClassifier",
    "TorchFitConfig",
    "accuracy",
    "macro_f1",
]
