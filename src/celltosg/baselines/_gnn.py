"""GCN, GAT and GIN baselines on the shared TOSG, built like the reference's graph baselines.

One convolution is shared by both stages: internal (RNA -> protein) message passing, then message passing
over all edges plus the internal result, then a second convolution, batch norm and LeakyReLU after each,
a learnable power-mean readout over the N nodes and a linear head. Node input features are the omic
value (0 on protein nodes) and an RNA-node indicator, so (B, N, 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from celltosg.baselines._torch import TorchClassifier, TorchFitConfig
from celltosg.errors import MalformedInputError

GNN_KINDS = ("gcn", "gat", "gin")


class GNNClassifier(TorchClassifier):
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
        super().__init__(n_classes=n_classes, seed=seed,
                         fit_config=fit_config or TorchFitConfig(batch_size=32, epochs=60), device=device)
        if kind not in GNN_KINDS:
            raise MalformedInputError(f"unknown graph baseline {kind!r}; choose one of {GNN_KINDS}")
        if kind == "gat" and hidden % heads:
            raise MalformedInputError(f"gat: hidden={hidden} must be a multiple of heads={heads}")
        self.name = kind
        self.kg = kg
        self.kind = kind
        self.hidden = int(hidden)
        self.heads = int(heads) if kind == "gat" else 1
        self.predict_batch_size = self.fit_config.batch_size * 4

    def check(self, X: np.ndarray) -> None:
        if X.shape[1] != self.kg.n_rna:
            raise MalformedInputError(
                f"{self.kind}: {X.shape[1]} expression columns but the graph has {self.kg.n_rna} RNA nodes; "
                "align the columns to the graph (celltosg.evaluation.align_to_kg)"
            )

    def build(self, n_genes: int):
        import torch

        from celltosg.baselines._modules import GraphBaseline

        internal = self.kg.edge_index("internal").long()
        union = torch.cat([internal, self.kg.edge_index("ppi").long(), self.kg.edge_index("ligand_receptor").long()], 1)
        return GraphBaseline(self.kind, self.kg.n_rna, self.kg.n_nodes, internal, union, self.hidden, self.heads,
                             self.n_classes)

    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "heads": self.heads, "lr": self.fit_config.lr}
