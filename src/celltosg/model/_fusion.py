"""Per-node cross-modal fusion of omic value, frozen text embedding and sequence features."""

from __future__ import annotations

import torch
from torch import nn


class NodeFusion(nn.Module):
    """Embed each node's modalities and fuse them per node and per cell into (B, N, hidden).

    Modalities: the omic value of RNA node i, embedded as ``GELU(x_i * (w + U t_i) + b)``: a value
    direction conditioned on the node's text embedding ``t_i``, so that a pooled readout can tell WHICH
    genes changed, not only how many (protein nodes have no omic value and carry a learned "no omic
    value" marker); the frozen text embedding projected from its full width T; protein sequence features
    projected from S (nodes without a sequence carry a learned "no sequence" marker). Text and sequence
    are the same in every cell, so their projections are computed once per batch as (N, hidden) and
    broadcast, never per cell.

    ``gated`` fusion: ``fused = sum_k sigmoid(g_k) * m_k`` with one scalar gate per modality, node and
    cell, ``g = W_o omic + W_s [text, seq]``. Chosen over attention fusion (a softmax over modality
    tokens with query/key/value projections) because two of the three modalities are constant across
    cells: the gate's static part is one (N, K) product per batch and the per-cell part a single
    (hidden -> K) projection, whereas attention fusion needs per-cell keys and values for every modality
    token (3 x the node-state memory) for no gain with three tokens. The gates let a cell lean on the
    text prior where its measured value is uninformative, and they are readable modality weights.
    ``sum`` fusion adds the modality embeddings (an ablation).
    """

    def __init__(self, hidden: int, text_dim: int, seq_dim: int, *, use_text: bool, use_seq: bool,
                 fusion: str = "gated"):
        super().__init__()
        self.fusion = fusion
        self.omic = nn.Linear(1, hidden)
        self.no_omic = nn.Parameter(torch.zeros(hidden))
        self.text = nn.Linear(text_dim, hidden) if use_text else None
        self.value_direction = nn.Linear(text_dim, hidden, bias=False) if use_text else None
        self.seq = nn.Linear(seq_dim, hidden) if use_seq else None
        self.no_seq = nn.Parameter(torch.zeros(hidden)) if use_seq else None
        n_static = int(use_text) + int(use_seq)
        if fusion == "gated":
            self.gate_omic = nn.Linear(hidden, 1 + n_static)
            self.gate_static = nn.Linear(n_static * hidden, 1 + n_static, bias=False) if n_static else None
        self.norm = nn.LayerNorm(hidden)
        nn.init.normal_(self.no_omic, std=0.1)
        if self.no_seq is not None:
            nn.init.normal_(self.no_seq, std=0.1)

    def static(self, text_emb: torch.Tensor, seq_feat: torch.Tensor, seq_mask: torch.Tensor) -> list[torch.Tensor]:
        """Cell-independent modality embeddings, each (N, hidden)."""
        out = []
        if self.text is not None:
            out.append(self.text(text_emb))
        if self.seq is not None:
            out.append(torch.where(seq_mask.unsqueeze(-1), self.seq(seq_feat), self.no_seq))
        return out

    def forward(self, x_rna: torch.Tensor, n_protein: int, text_emb: torch.Tensor, seq_feat: torch.Tensor,
                seq_mask: torch.Tensor) -> torch.Tensor:
        """``x_rna`` (B, n_rna), node features (N, T), (N, S), (N,) -> fused node states (B, N, hidden)."""
        return self.forward_nodes(x_rna, n_protein, text_emb, seq_feat, seq_mask).transpose(0, 1)

    def forward_nodes(self, x_rna: torch.Tensor, n_protein: int, text_emb: torch.Tensor, seq_feat: torch.Tensor,
                      seq_mask: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` returning node-first states (N, B, hidden)."""
        batch, n_rna = x_rna.shape
        direction = self.omic.weight.view(-1)  # (hidden,)
        if self.value_direction is not None:
            direction = (direction + self.value_direction(text_emb[:n_rna])).unsqueeze(1)  # (n_rna, 1, hidden)
        rna = nn.functional.gelu(x_rna.t().unsqueeze(-1) * direction + self.omic.bias)  # (n_rna, B, hidden)
        static = [m.unsqueeze(1) for m in self.static(text_emb, seq_feat, seq_mask)]  # (N, 1, hidden) each
        fused_rna = self._fuse(rna, [m[:n_rna] for m in static])
        if not n_protein:
            return fused_rna
        # protein nodes carry no omic value: their fused state is the same in every cell, computed once
        no_omic = self.no_omic.expand(n_protein, 1, -1)
        fused_protein = self._fuse(no_omic, [m[n_rna:] for m in static])  # (n_protein, 1, hidden)
        return torch.cat([fused_rna, fused_protein.expand(-1, batch, -1)], 0)

    def _fuse(self, omic: torch.Tensor, static: list[torch.Tensor]) -> torch.Tensor:
        """Fuse omic embeddings (n, B or 1, hidden) with static modalities (n, 1, hidden) -> (n, B or 1, hidden)."""
        if self.fusion == "sum":
            fused = omic + sum(static) if static else omic
        else:
            logits = self.gate_omic(omic)  # (n, B, K)
            if static:
                logits = logits + self.gate_static(torch.cat(static, -1))  # (n, 1, K), once per batch
            gates = torch.sigmoid(logits)
            fused = gates[..., :1] * omic
            for k, modality in enumerate(static, start=1):
                fused = fused + gates[..., k : k + 1] * modality
        return self.norm(fused)
