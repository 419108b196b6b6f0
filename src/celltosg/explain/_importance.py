"""Node and edge importance for one group of cells: attention coefficients, or class-contrastive gradients.

Attention (models whose ``encode(x, return_attention=True)`` returns ``(node_emb, [layer, ...])`` with
one entry per attention layer, each carrying ``edge_index`` (2, E_l) and ``alpha`` (B, E_l, H), like
:class:`celltosg.model.LayerAttention`; layers may use different edge lists, e.g. internal then global):

- edge score per cell and layer = mean over heads;
- node score per cell and layer, rule ``"received"`` (default): the attention a node receives as a
  message source beyond what uniform attention over each target's listed incoming edges would give it,
  ``sum_{e: i -> j} (alpha_e - 1 / indegree(j))``. Softmax attention sums to (about) one over each
  target's incoming edges, so the reference's summed in-attention is nearly constant and its summed
  out-attention grows with the degree; the excess is zero under uniform attention and is not inflated
  by the degree alone. Layers that add a self loop to each softmax (celltosg's do) leave it out of the
  listed edges, so a lone incoming edge still scores how much it wins against the target's own state;
- rule ``"reference"``: the reference implementation's mean of summed in- and out-attention,
  ``(sum_{e: * -> i} alpha_e + sum_{e: i -> *} alpha_e) / 2``;
- over the selected layers: a node's score is the mean over the layers whose edges touch it, an edge's
  score the mean over the layers that contain it (edges are directed; the output lists each once);
- group score = mean over the cells. Nodes that no selected layer touches get NaN (unscored), so they
  never outrank nodes with a negative excess.

Gradient x input and integrated gradients: class-contrastive attributions on the omic values (see
:mod:`celltosg.explain._attribution`); a class-contrastive attention score is the class cells' score minus
that of the other cells (or of the contrast class's cells), see :func:`contrast`.

Which method is the default (:data:`DEFAULT_METHOD`) was chosen by ``benchmarks/explain_recovery.py``
(tables in ``docs/benchmarks.md``). On a classifier that has learned the classes (an MLP on the same
inputs, explained through the same code), gradient x input and integrated gradients against the cohort's
mean profile tie: P@20 0.85 on planted modules against 0.75 for scanpy's Wilcoxon, and 19 / 16 / 17 of
their top 20 genes in the Wilcoxon top 50 for PBMC CD14+ monocytes, B and NK cells (integrated gradients
19 / 15 / 17); the zeros baseline does worse on planted modules (0.50). Attention, which is not specific
to a class, reached 0.50 and 11 / 1 / 4 on today's CellTOSG-FM, where the gradient methods reach only
0.00 and 3-4 / 2-3 / 1-2 because that model has not learned the classes (test accuracy 0.44 and 0.50).
With the two gradient methods tied, gradient x input is the default: it needs one backward pass per
cell where integrated gradients needs ``n_steps`` (24): the whole explanation took 5-7x as long on PBMC.

Contrast: ``contrast(a, b)`` scores ``a - b`` (class against reference) and ranks nodes by magnitude.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import torch

from celltosg.errors import CellTOSGError
from celltosg.explain._attribution import (
    GRADIENT_METHODS,
    baseline_profile,
    batches,
    model_device,
    node_scores,
    rna_attribution,
)

log = logging.getLogger(__name__)

NODE_RULES = ("received", "reference")
METHODS = ("attention", *GRADIENT_METHODS)
DEFAULT_METHOD = "gradient_x_input"


@dataclasses.dataclass
class Importance:
    """Importance scores of one group of cells (or of a contrast between two groups).

    Attributes
    ----------
    node
        float64 (N,): one score per graph node (NaN = not scored).
    edge
        float64 (E,) over ``edge_index``, or None (the gradient methods have no edge scores).
    edge_index
        int64 (2, E) or None.
    method
        One of :data:`METHODS`.
    n_cells
        Cells aggregated (for a contrast: those of the class).
    contrast
        True for class-minus-reference scores, which rank by magnitude.
    """

    node: np.ndarray
    edge: np.ndarray | None
    edge_index: np.ndarray | None
    method: str
    n_cells: int
    contrast: bool = False

    def ranking(self) -> np.ndarray:
        """(N,) the score nodes are ranked by: the score, or its magnitude for a contrast."""
        return np.abs(self.node) if self.contrast else self.node


def select_layers(attentions: Sequence, layers: Sequence[int] | None = None) -> list:
    """The chosen attention layers (``layers`` index the list, negative from the end; None = all)."""
    if not attentions:
        raise CellTOSGError("the model returned no attention coefficients (a gcn / gin model?); "
                            "use method='gradient_x_input'")
    chosen = range(len(attentions)) if layers is None else list(layers)
    try:
        return [attentions[i] for i in chosen]
    except IndexError:
        raise CellTOSGError(
            f"attention layers {list(chosen)} asked for, but the model has {len(attentions)} attention "
            f"layers; pick indices in 0..{len(attentions) - 1}"
        ) from None


def merge_edges(edge_indices: Sequence[np.ndarray], values: Sequence[np.ndarray],
                n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of per-layer edge values over the layers containing each directed edge.

    Parameters
    ----------
    edge_indices
        One int (2, E_l) per layer.
    values
        One float (E_l,) per layer.

    Returns
    -------
    edge_index
        int64 (2, U): the distinct directed edges, sorted by (source, target).
    value
        float64 (U,).
    """
    src = np.concatenate([np.asarray(e[0], dtype=np.int64) for e in edge_indices])
    dst = np.concatenate([np.asarray(e[1], dtype=np.int64) for e in edge_indices])
    keys, inverse = np.unique(src * n_nodes + dst, return_inverse=True)
    total = np.bincount(inverse, weights=np.concatenate(values).astype(np.float64), minlength=len(keys))
    count = np.bincount(inverse, minlength=len(keys))
    return np.stack([keys // n_nodes, keys % n_nodes]), total / count


def node_attention(edge_scores: torch.Tensor, edge_index: torch.Tensor, n_nodes: int,
                   rule: str = "received") -> torch.Tensor:
    """Per-cell node scores from per-cell edge scores (see the module doc for the rules).

    Parameters
    ----------
    edge_scores
        (B, E).
    edge_index
        (2, E) source, target node indices.
    n_nodes
        N.
    rule
        ``"received"`` or ``"reference"``.

    Returns
    -------
    torch.Tensor
        (B, N).
    """
    src, dst = edge_index.to(edge_scores.device)
    batch = edge_scores.shape[0]
    zeros = edge_scores.new_zeros(batch, n_nodes)
    if rule == "reference":
        return (zeros.index_add(1, dst, edge_scores) + zeros.index_add(1, src, edge_scores)) / 2
    if rule != "received":
        raise ValueError(f"unknown node rule {rule!r}; choose one of {NODE_RULES}")
    in_degree = torch.bincount(dst, minlength=n_nodes).clamp_min(1).to(edge_scores.dtype)
    return zeros.index_add(1, src, edge_scores - 1 / in_degree[dst])


def attention_importance(model: torch.nn.Module, X: np.ndarray, *, layers: Sequence[int] | None = None,
                         rule: str = "received", batch_size: int = 8) -> Importance:
    """Mean attention importance over the cells of ``X`` (n, n_rna) (see the module doc)."""
    n_nodes = model.graph.n_rna + model.graph.n_protein
    device = model_device(model)
    node_sum = torch.zeros(n_nodes, dtype=torch.float64)
    edge_lists: list[torch.Tensor] = []
    edge_sums: list[torch.Tensor] = []
    model.eval()
    with torch.no_grad():
        for x in batches(X, batch_size):
            _, attentions = model.encode(x.to(device), return_attention=True)
            picked = select_layers(attentions, layers)
            if not edge_lists:
                edge_lists = [layer.edge_index.cpu() for layer in picked]
                edge_sums = [torch.zeros(e.shape[1], dtype=torch.float64) for e in edge_lists]
            for i, layer in enumerate(picked):
                scores = layer.alpha.float().mean(-1)  # (B, E_l)
                edge_sums[i] += scores.sum(0).double().cpu()
                node_sum += node_attention(scores, layer.edge_index, n_nodes, rule).sum(0).double().cpu()
    coverage = sum(np.bincount(e.numpy().ravel(), minlength=n_nodes) > 0 for e in edge_lists)
    n = max(len(X), 1)
    node = np.full(n_nodes, np.nan)
    node[coverage > 0] = node_sum.numpy()[coverage > 0] / n / coverage[coverage > 0]
    edge_index, edge = merge_edges([e.numpy() for e in edge_lists], [t.numpy() / n for t in edge_sums], n_nodes)
    return Importance(node=node, edge=edge, edge_index=edge_index, method="attention", n_cells=len(X))


def importance(model: torch.nn.Module, X: np.ndarray, *, method: str = DEFAULT_METHOD,
               class_index: int | None = None, contrast_index: int | None = None,
               baseline: np.ndarray | None = None, layers: Sequence[int] | None = None, rule: str = "received",
               batch_size: int = 8, n_steps: int = 24) -> Importance:
    """Node (and, for attention, edge) importance over the cells of ``X`` (n, n_rna).

    Parameters
    ----------
    method
        One of :data:`METHODS`.
    class_index, contrast_index
        The class explained by the gradient methods, and the class it is compared with (None = the mean
        of all other classes' logits).
    baseline
        (n_rna,) reference profile of the gradient methods (:func:`baseline_profile`); None = zeros.
    layers, rule
        Attention layers (indices into the model's list of attention layers) and node rule.
    n_steps
        Quadrature points of integrated gradients.
    """
    if len(X) == 0:
        raise CellTOSGError("no cells to explain: the selection is empty; check the class label and filters")
    if method == "attention":
        return attention_importance(model, X, layers=layers, rule=rule, batch_size=batch_size)
    if method not in GRADIENT_METHODS:
        raise CellTOSGError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
    if class_index is None:
        raise CellTOSGError(f"{method} needs the class to explain; pass class_index")
    graph = model.graph
    profile = baseline_profile(X, "zeros" if baseline is None else baseline)
    rna = rna_attribution(model, X, class_index, method=method, baseline=profile, contrast_index=contrast_index,
                          batch_size=batch_size, n_steps=n_steps)
    node = node_scores(rna, graph.n_rna + graph.n_protein, graph.internal_edge_index)
    return Importance(node=node, edge=None, edge_index=None, method=method, n_cells=len(X))


def contrast(target: Importance, reference: Importance) -> Importance:
    """Scores of ``target`` minus ``reference`` (same model, same method), ranked by magnitude."""
    if target.method != reference.method:
        raise CellTOSGError(f"cannot contrast {target.method} with {reference.method} scores")
    edge = None if target.edge is None or reference.edge is None else target.edge - reference.edge
    return Importance(node=target.node - reference.node, edge=edge, edge_index=target.edge_index,
                      method=target.method, n_cells=target.n_cells, contrast=True)
