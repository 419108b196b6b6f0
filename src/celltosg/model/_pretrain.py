"""Edge-masking pretraining: hide PPI edges from the encoder, reconstruct them against non-edges."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from celltosg.errors import MalformedInputError
from celltosg.model._inputs import GraphInputs


@dataclass
class PretrainOutput:
    """One pretraining step's result.

    ``loss`` = ``edge_loss`` + degree_weight * ``degree_loss`` (scalars); ``logits`` and ``labels``
    (B, 2P): scores of the P masked edges (label 1) then P sampled non-edges (label 0) in every cell;
    ``pairs`` (2, 2P) the scored node pairs; ``edge_mask`` bool (Eg,) the global edges hidden from the
    encoder in this step; ``node`` (B, N, hidden) the encoder's node embeddings.
    """

    loss: torch.Tensor
    edge_loss: torch.Tensor
    degree_loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    pairs: torch.Tensor
    edge_mask: torch.Tensor
    node: torch.Tensor


def _pair_keys(src: torch.Tensor, dst: torch.Tensor, n: int) -> torch.Tensor:
    """Key of the unordered pair {src, dst}: min * n + max."""
    return torch.minimum(src, dst) * n + torch.maximum(src, dst)


class EdgeMaskingObjective(nn.Module):
    """Mask PPI edges per step, decode them from node embeddings (Hadamard product), plus a degree term.

    Each step samples a fraction of the undirected PPI pairs, hides every global edge joining a sampled
    pair (both directions, and a ligand -> receptor edge on the same pair) from the encoder, scores them
    and as many uniformly sampled protein non-edges with ``MLP(h_i * h_j)``, and applies BCE. A second
    head predicts ``log1p`` of each protein's full PPI degree from its embedding (MSE).

    Parameters
    ----------
    graph
        The model's :class:`GraphInputs`.
    hidden
        Node embedding width of the encoder.
    mask_ratio
        Fraction of undirected PPI pairs masked per step, capped at ``max_masked`` pairs.
    degree_weight
        Weight of the degree MSE (nonzero by default).
    seed
        Seed of the objective's own generator (used when ``forward`` is given none).
    """

    def __init__(self, graph: GraphInputs, hidden: int, *, mask_ratio: float = 0.05, max_masked: int = 4096,
                 degree_weight: float = 0.1, seed: int = 0):
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise MalformedInputError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        n = graph.n_nodes
        src, dst = graph.global_edge_index.long()
        keys = _pair_keys(src, dst, n)
        ppi_keys = torch.unique(keys[graph.ppi_mask & (src != dst)])
        if ppi_keys.numel() == 0:
            raise MalformedInputError("the graph has no PPI edges to mask; pretraining needs a graph with PPI edges")
        self.n_nodes, self.n_rna = n, graph.n_rna
        self.mask_ratio, self.max_masked, self.degree_weight = mask_ratio, max_masked, degree_weight
        self.global_keys = keys
        self.ppi_keys = ppi_keys
        self.known_keys = torch.unique(keys)
        degree = torch.bincount(torch.cat([ppi_keys // n, ppi_keys % n]), minlength=n).float()
        self.register_buffer("degree_target", torch.log1p(degree[graph.n_rna:]), persistent=False)
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.degree_head = nn.Linear(hidden, 1)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def n_masked(self) -> int:
        """Pairs masked per step P."""
        return max(1, min(self.max_masked, round(self.mask_ratio * self.ppi_keys.numel())))

    def sample(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masked pairs (2, P), non-edge pairs (2, P) and the bool (Eg,) mask of hidden global edges."""
        generator = generator or self.generator
        p, n = self.n_masked, self.n_nodes
        masked = self.ppi_keys[torch.randperm(self.ppi_keys.numel(), generator=generator)[:p]]
        edge_mask = torch.isin(self.global_keys, masked)
        negatives = torch.empty(0, dtype=torch.long)
        while negatives.numel() < p:
            a, b = torch.randint(self.n_rna, n, (2, 2 * p), generator=generator)
            candidates = _pair_keys(a, b, n)[a != b]
            candidates = candidates[~torch.isin(candidates, self.known_keys)]
            negatives = torch.cat([negatives, candidates])
        negatives = negatives[:p]
        as_pairs = lambda k: torch.stack([k // n, k % n])  # noqa: E731
        return as_pairs(masked), as_pairs(negatives), edge_mask

    def forward(self, model: nn.Module, x_rna: torch.Tensor,
                generator: torch.Generator | None = None) -> PretrainOutput:
        """Loss of one step of ``model`` (a :class:`CellTOSGFM`) on ``x_rna`` (B, n_rna)."""
        positives, negatives, edge_mask = self.sample(generator)
        device = x_rna.device
        node = model.encode(x_rna, edge_mask=edge_mask.to(device))
        pairs = torch.cat([positives, negatives], 1).to(device)
        logits = self.decoder(node[:, pairs[0]] * node[:, pairs[1]]).squeeze(-1)  # (B, 2P)
        labels = torch.zeros_like(logits)
        labels[:, : positives.shape[1]] = 1.0
        edge_loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        predicted = self.degree_head(node[:, self.n_rna:]).squeeze(-1)
        degree_loss = nn.functional.mse_loss(predicted, self.degree_target.expand_as(predicted))
        loss = edge_loss + self.degree_weight * degree_loss
        return PretrainOutput(loss, edge_loss, degree_loss, logits, labels, pairs, edge_mask, node)


def edge_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """ROC AUC and average precision of edge scores (any shape; flattened)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = labels.detach().flatten().cpu().numpy()
    s = logits.detach().flatten().float().cpu().numpy()
    return {"auc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s))}
