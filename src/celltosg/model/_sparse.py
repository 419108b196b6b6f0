"""One graph shared by every cell of a batch: cached sparse adjacencies and a batched sparse product.

A batch is a dense ``(B, N, F)`` tensor; message passing multiplies an ``(N, N)`` sparse matrix with the
batch laid out node-first as ``(N, B*F)``, so the edge list is read once per batch, never per cell.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from celltosg.errors import MalformedInputError

ADJACENCY_KINDS = ("sum", "sum_self_loops", "gcn")


class _SharedSpMM(torch.autograd.Function):
    """``A @ X`` for a constant sparse CSR ``A`` (N, N) and dense ``X`` (N, K); backward uses ``A^T``.

    ``torch.sparse.mm`` rather than ``@``: on CPU the operator goes through ``addmm`` (zero fill plus copy
    of the output), 5x slower on the PBMC graph."""

    @staticmethod
    def forward(ctx, matrix, matrix_t, dense):
        ctx.matrix_t = matrix_t
        return torch.sparse.mm(matrix, dense)

    @staticmethod
    def backward(ctx, grad):
        return None, None, torch.sparse.mm(ctx.matrix_t, grad.contiguous())


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int, n_cols: int | None = None
         ) -> torch.Tensor:
    """CSR matrix (n, n_cols; square by default) with entries ``values`` at (rows, cols); duplicates are summed."""
    n_cols = n if n_cols is None else n_cols
    key = rows * n_cols + cols
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    summed = torch.zeros(unique.numel(), dtype=values.dtype, device=values.device)
    summed.index_add_(0, inverse, values)
    unique_rows = torch.div(unique, n_cols, rounding_mode="floor")
    crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(unique_rows, minlength=n), 0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product below is stable API
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, unique % n_cols, summed, (n, n_cols), check_invariants=False)


class Block(NamedTuple):
    """The part of a self-looped adjacency that mixes nodes: targets ``first_target..N-1`` (every node
    before them has its self loop only), sources ``first_source..N-1``; ``matrix`` (N - first_target,
    N - first_source) CSR and its transpose."""

    first_target: int
    first_source: int
    matrix: torch.Tensor
    matrix_t: torch.Tensor


class SharedGraph:
    """An edge list over ``n_nodes`` nodes, shared by all cells, with adjacencies built once and cached.

    Parameters
    ----------
    edge_index
        LongTensor (2, E): row 0 = source node, row 1 = target node (messages flow source -> target).
    n_nodes
        Number of nodes N.

    Adjacency kinds (rows = targets, columns = sources):

    - ``sum``: one entry per edge as given (duplicates add up, self loops kept): GIN aggregation.
    - ``sum_self_loops``: input self loops replaced by exactly one self loop per node: attention.
    - ``gcn``: ``D^-1/2 (A + I) D^-1/2`` on ``sum_self_loops`` with in-degree ``D``: PyG's ``gcn_norm``.
    """

    def __init__(self, edge_index: torch.Tensor, n_nodes: int):
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise MalformedInputError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
        edge_index = edge_index.long()
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_nodes):
            raise MalformedInputError(
                f"edge_index refers to nodes outside 0..{n_nodes - 1}; check that it belongs to this graph")
        self.edge_index = edge_index
        self.n_nodes = int(n_nodes)
        self._cache: dict[tuple, object] = {}

    @classmethod
    def of(cls, graph: SharedGraph | torch.Tensor, n_nodes: int) -> SharedGraph:
        """``graph`` itself, or a new SharedGraph around a raw (2, E) edge_index."""
        if isinstance(graph, SharedGraph):
            if graph.n_nodes != n_nodes:
                raise MalformedInputError(f"graph has {graph.n_nodes} nodes but the input has {n_nodes}")
            return graph
        return cls(graph, n_nodes)

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def subset(self, keep: torch.Tensor) -> SharedGraph:
        """A new graph with the edges where ``keep`` (bool (E,)) is True."""
        return SharedGraph(self.edge_index[:, keep.to(self.edge_index.device)], self.n_nodes)

    def edges_with_self_loops(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Source and target (E', each) with input self loops removed and one self loop per node added."""
        key = ("loops", str(device))
        if key not in self._cache:
            src, dst = self.edge_index.to(device)
            keep = src != dst
            loop = torch.arange(self.n_nodes, device=device)
            self._cache[key] = (torch.cat([src[keep], loop]), torch.cat([dst[keep], loop]))
        return self._cache[key]

    def adjacency(self, kind: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The CSR matrix of ``kind`` (N, N) and its transpose, on ``device`` in ``dtype``."""
        if kind not in ADJACENCY_KINDS:
            raise MalformedInputError(f"unknown adjacency kind {kind!r}; choose one of {ADJACENCY_KINDS}")
        key = (kind, dtype, str(device))
        if key not in self._cache:
            if kind == "sum":
                src, dst = self.edge_index.to(device)
            else:
                src, dst = self.edges_with_self_loops(device)
            values = torch.ones(src.numel(), dtype=torch.float64, device=device)
            if kind == "gcn":
                degree = torch.zeros(self.n_nodes, dtype=torch.float64, device=device).index_add_(0, dst, values)
                inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
                values = inv_sqrt[src] * inv_sqrt[dst]
            values = values.to(dtype)
            self._cache[key] = (_csr(dst, src, values, self.n_nodes), _csr(src, dst, values, self.n_nodes))
        return self._cache[key]

    def self_loop_block(self, dtype: torch.dtype, device: torch.device) -> Block:
        """The ``sum_self_loops`` adjacency restricted to the rows and columns that mix nodes (:class:`Block`).

        Nodes are in graph order (RNA nodes first), and RNA nodes receive no message in either stage, so the
        block is about the protein half: an attention layer over it gives the same result as over the
        full matrix (a node with only its self loop attends to itself alone) at a fraction of the work.
        """
        key = ("block", dtype, str(device))
        if key not in self._cache:
            src, dst = self.edge_index.to(device)
            mixing = src != dst
            n = self.n_nodes
            first_target = int(dst[mixing].min()) if bool(mixing.any()) else n
            first_source = min(first_target, int(src[mixing].min()) if bool(mixing.any()) else n)
            src, dst = self.edges_with_self_loops(device)
            kept = dst >= first_target
            rows, cols = dst[kept] - first_target, src[kept] - first_source
            values = torch.ones(rows.numel(), dtype=dtype, device=device)
            shape = (n - first_target, n - first_source)
            self._cache[key] = Block(first_target, first_source, _csr(rows, cols, values, *shape),
                                     _csr(cols, rows, values, shape[1], shape[0]))
        return self._cache[key]

    def propagate(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """Aggregate over incoming edges for every cell at once.

        Parameters
        ----------
        x
            (B, N, K) per-cell node values.
        kind
            Adjacency kind (see class docstring).

        Returns
        -------
        (B, N, K): ``out[b, j] = sum_i A[j, i] x[b, i]``.
        """
        return self.propagate_nodes(x.transpose(0, 1), kind).transpose(0, 1)

    def propagate_nodes(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """:meth:`propagate` in node-first layout: (N, B, K) -> (N, B, K); no copy when ``x`` is contiguous."""
        n, batch, k = x.shape
        matrix, matrix_t = self.adjacency(kind, x.dtype, x.device)
        return _SharedSpMM.apply(matrix, matrix_t, x.reshape(n, batch * k)).view(n, batch, k)
