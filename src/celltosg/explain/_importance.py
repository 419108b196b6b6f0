"""Node and edge importance for one group of cells: attention coefficients, or gradient x input.

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

Gradient x input (models without attention): ``d logit_c / d x * x`` on the RNA values, mean over the
cells; a protein node takes the score of its RNA node (the one of largest magnitude when several map to
it, through the graph's internal RNA -> protein edges). There are no edge scores.

Contrast: ``contrast(a, b)`` scores ``a - b`` (class against reference) and ranks nodes by magnitude.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import torch

from celltosg.errors import CellTOSGError

log = logging.getLogger(__name__)

NODE_RULES = ("received", "reference")


@dataclasses.dataclass
class Importance:
    """Importance scores of one group of cells (or of a contrast between two groups).

    Attributes
    ----------
    node
        float64 (N,): one score per graph node (NaN = not scored).
    edge
        float64 (E,) over ``edge_index``, or None (gradient x input has no edge scores).
    edge_index
        int64 (2, E) or None.
    method
        ``"attention"`` or ``"gradient_x_input"``.
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


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _batches(X: np.ndarray, batch_size: int):
    from celltosg.progress import progress

    starts = range(0, len(X), batch_size)
    for start in progress(starts, description="explaining cells", total=len(starts)):
        yield torch.as_tensor(np.asarray(X[start : start + batch_size], dtype=np.float32))


def attention_importance(model: torch.nn.Module, X: np.ndarray, *, layers: Sequence[int] | None = None,
                         rule: str = "received", batch_size: int = 8) -> Importance:
    """Mean attention importance over the cells of ``X`` (n, n_rna) (see the module doc)."""
    n_nodes = model.graph.n_rna + model.graph.n_protein
    device = _device(model)
    node_sum = torch.zeros(n_nodes, dtype=torch.float64)
    edge_lists: list[torch.Tensor] = []
    edge_sums: list[torch.Tensor] = []
    model.eval()
    with torch.no_grad():
        for x in _batches(X, batch_size):
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


def gradient_importance(model: torch.nn.Module, X: np.ndarray, class_index: int, *,
                        batch_size: int = 8) -> Importance:
    """Mean gradient x input of the ``class_index`` logit over the cells of ``X`` (n, n_rna)."""
    graph = model.graph
    n_rna, n_nodes = graph.n_rna, graph.n_rna + graph.n_protein
    device = _device(model)
    total = torch.zeros(n_rna, dtype=torch.float64)
    model.eval()
    for x in _batches(X, batch_size):
        x = x.to(device).requires_grad_(True)
        logits = model(x).get("logits")
        if logits is None or not 0 <= class_index < logits.shape[1]:
            raise CellTOSGError(f"class index {class_index} is not an output of the model's head; "
                                "explain a fine-tuned classifier with one of its classes")
        (grad,) = torch.autograd.grad(logits[:, class_index].sum(), x)
        total += (grad * x).detach().sum(0).double().cpu()
    rna = (total / max(len(X), 1)).numpy()
    node = np.zeros(n_nodes)
    node[:n_rna] = rna
    src, dst = graph.internal_edge_index.cpu().numpy()
    order = np.argsort(np.abs(rna[src]), kind="stable")  # largest magnitude written last wins
    node[dst[order]] = rna[src[order]]
    return Importance(node=node, edge=None, edge_index=None, method="gradient_x_input", n_cells=len(X))


def has_attention(model: torch.nn.Module, x: np.ndarray) -> bool:
    """Whether ``model.encode`` returns attention coefficients for ``x`` (1, n_rna)."""
    model.eval()
    with torch.no_grad():
        _, attentions = model.encode(torch.as_tensor(x, dtype=torch.float32).to(_device(model)),
                                     return_attention=True)
    return bool(attentions)


def importance(model: torch.nn.Module, X: np.ndarray, *, method: str = "auto", class_index: int | None = None,
               layers: Sequence[int] | None = None, rule: str = "received", batch_size: int = 8) -> Importance:
    """Node and edge importance over the cells of ``X`` (n, n_rna).

    Parameters
    ----------
    method
        ``"attention"``, ``"gradient_x_input"`` or ``"auto"`` (attention when the model returns any).
    class_index
        The logit explained by the gradient method.
    layers, rule
        Attention layers (indices into the model's list of attention layers) and node rule.
    """
    if len(X) == 0:
        raise CellTOSGError("no cells to explain: the selection is empty; check the class label and filters")
    if method == "auto":
        method = "attention" if has_attention(model, X[:1]) else "gradient_x_input"
    if method == "attention":
        return attention_importance(model, X, layers=layers, rule=rule, batch_size=batch_size)
    if method == "gradient_x_input":
        if class_index is None:
            raise CellTOSGError("gradient x input needs the class to explain; pass class_index")
        return gradient_importance(model, X, class_index, batch_size=batch_size)
    raise ValueError(f"unknown method {method!r}; choose 'auto', 'attention' or 'gradient_x_input'")


def contrast(target: Importance, reference: Importance) -> Importance:
    """Scores of ``target`` minus ``reference`` (same model, same method), ranked by magnitude."""
    if target.method != reference.method:
        raise CellTOSGError(f"cannot contrast {target.method} with {reference.method} scores")
    edge = None if target.edge is None or reference.edge is None else target.edge - reference.edge
    return Importance(node=target.node - reference.node, edge=edge, edge_index=target.edge_index,
                      method=target.method, n_cells=target.n_cells, contrast=True)
