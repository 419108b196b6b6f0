"""GCN, GAT and GIN baselines on the shared TOSG, built like the reference's graph baselines.

One convolution is shared by both stages: internal (RNA -> protein) message passing, then message passing
over all edges plus the internal result, then a second convolution, batch norm and LeakyReLU after each,
a learnable power-mean readout over the N nodes and a linear head. Node input features are the omic
value (0 on protein nodes) and an RNA-node indicator, so (B, N, 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from celltosg.baselines._base import Classifier, check_xy
from celltosg.baselines._torch_fit import TorchFitConfig, default_device, fit_module, predict_logits
from celltosg.errors import MalformedInputError

GNN_KINDS = ("gcn", "gat", "gin")


def _conv(kind: str, n_in: int, n_out: int, heads: int):
    from torch import nn

    from celltosg.model import SharedGATConv, SharedGCNConv, SharedGINConv

    if kind == "gcn":
        return SharedGCNConv(n_in, n_out)
    if kind == "gin":
        return SharedGINConv(nn.Linear(n_in, n_out), train_eps=True)
    return SharedGATConv(n_in, n_out // heads, heads=heads)


def _power_mean(x, p, *, dim: int, low: float = 1e-6, high: float = 100.0):
    """``mean(clamp(x)^p)^(1/p)`` over ``dim`` (PyG's ``PowerMeanAggregation``; the floor
    ``low`` > 0 keeps the gradient in ``p`` finite where every value is clamped)."""
    out = x.clamp(low, high).pow(p).mean(dim)
    return out.clamp(low, high).pow(1.0 / p)


def _graph_module(kind: str, n_rna: int, n_nodes: int, internal, union, hidden: int, heads: int, n_classes: int):
    import torch
    from torch import nn

    from celltosg.model import SharedGraph

    class GraphBaseline(nn.Module):
        """x_rna (B, n_rna) -> logits (B, C)."""

        def __init__(self) -> None:
            super().__init__()
            self.internal = SharedGraph(internal, n_nodes)
            self.union = SharedGraph(union, n_nodes)
            self.conv_first = _conv(kind, 2, hidden, heads)
            self.conv_last = _conv(kind, hidden, hidden, heads)
            self.internal_transformation = nn.Linear(hidden, hidden)
            self.z_norm, self.x_norm_first, self.x_norm_last = (nn.BatchNorm1d(hidden) for _ in range(3))
            self.act = nn.LeakyReLU(0.1)
            self.p = nn.Parameter(torch.ones(1))  # learnable power of the readout, as PyG's learn=True
            self.head = nn.Linear(hidden, n_classes)
            is_rna = torch.zeros(n_nodes)
            is_rna[:n_rna] = 1.0
            self.register_buffer("is_rna", is_rna)

        @staticmethod
        def _norm(norm, x):
            return norm(x.reshape(-1, x.shape[-1])).view(x.shape)

        def forward(self, x_rna):
            batch = x_rna.shape[0]
            values = torch.zeros(batch, n_nodes, device=x_rna.device, dtype=x_rna.dtype)
            values[:, :n_rna] = x_rna
            x = torch.stack([values, self.is_rna.expand(batch, -1)], -1)  # (B, N, 2)
            z = self._norm(self.z_norm, self.internal_transformation(self.conv_first(x, self.internal)))
            x = self.act(self._norm(self.x_norm_first, self.conv_first(x, self.union) + z))
            x = self.act(self._norm(self.x_norm_last, self.conv_last(x, self.union)))
            return self.head(_power_mean(x, self.p, dim=1))  # power mean over the N nodes: (B, H)

    return GraphBaseline()


class GNNClassifier(Classifier):
    """A reference-style graph baseline (``kind`` = gcn, gat or gin) on a knowledge graph.

    Parameters
    ----------
    kg
        :class:`celltosg.kg.KnowledgeGraph` whose RNA node ``i`` is expression column ``i``.
    kind
        ``gcn``, ``gat`` or ``gin``.
    hidden
        Node embedding width (a multiple of ``heads`` for gat).
    heads
        Attention heads (gat only).
    fit_config
        Optimisation settings.
    """

    def __init__(
        self,
        *,
        n_classes: int,
        kg,
        kind: str = "gcn",
        seed: int = 0,
        hidden: int = 32,
        heads: int = 2,
        fit_config: TorchFitConfig | None = None,
        device=None,
    ) -> None:
        super().__init__(n_classes=n_classes, seed=seed)
        if kind not in GNN_KINDS:
            raise MalformedInputError(f"unknown graph baseline {kind!r}; choose one of {GNN_KINDS}")
        if kind == "gat" and hidden % heads:
            raise MalformedInputError(f"gat: hidden={hidden} must be a multiple of heads={heads}")
        self.name = kind
        self.kg = kg
        self.kind = kind
        self.hidden = int(hidden)
        self.heads = int(heads) if kind == "gat" else 1
        self.fit_config = fit_config or TorchFitConfig(batch_size=32, epochs=60)
        self.device = device or default_device()
        self._module = None

    def _edges(self):
        import torch

        internal = self.kg.edge_index("internal").long()
        union = torch.cat([internal, self.kg.edge_index("ppi").long(), self.kg.edge_index("ligand_receptor").long()], 1)
        return internal, union

    def fit(self, X_train, y_train, X_val, y_val) -> GNNClassifier:
        """Train with early stopping on the validation rows."""
        import torch

        X, y = check_xy(X_train, y_train, self.n_classes, f"{self.kind} training data")
        Xv, yv = check_xy(X_val, y_val, self.n_classes, f"{self.kind} validation data")
        if X.shape[1] != self.kg.n_rna:
            raise MalformedInputError(
                f"{self.kind}: {X.shape[1]} expression columns but the graph has {self.kg.n_rna} RNA nodes; "
                "align the columns to the graph (celltosg.evaluation.align_to_kg)"
            )
        internal, union = self._edges()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = _graph_module(self.kind, self.kg.n_rna, self.kg.n_nodes, internal, union, self.hidden,
                                   self.heads, self.n_classes)
            self._module = fit_module(module, X, y, Xv, yv, n_classes=self.n_classes, config=self.fit_config,
                                      seed=self.seed, device=self.device)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, (n, C)."""
        import torch

        X, _ = check_xy(X, None, self.n_classes, f"{self.kind} input")
        logits = predict_logits(self._module, X, batch_size=self.fit_config.batch_size * 4, device=self.device)
        return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()

    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "heads": self.heads, "lr": self.fit_config.lr}
