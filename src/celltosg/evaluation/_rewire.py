"""Degree-preserving random rewiring of a knowledge graph by double-edge swaps (the null topology)."""

from __future__ import annotations

import logging

import numpy as np

from celltosg.errors import MalformedInputError

logger = logging.getLogger(__name__)

# Edge kinds whose topology is signaling; internal RNA -> protein edges encode gene identity and are kept.
REWIRED_KINDS = ("ppi", "ligand_receptor")


def _keys(src: np.ndarray, dst: np.ndarray, n_nodes: int, directed: bool) -> np.ndarray:
    if not directed:
        src, dst = np.minimum(src, dst), np.maximum(src, dst)
    return src * n_nodes + dst


def double_edge_swap(
    edges: np.ndarray, *, n_nodes: int, n_swaps: int | None = None, directed: bool = False, seed: int = 0,
    max_rounds: int = 1000,
) -> np.ndarray:
    """Rewire edges by double-edge swaps, keeping every node's degree (in- and out-degree when directed).

    Each round pairs up disjoint random edges (a, b), (c, d) and proposes (a, d), (c, b); a proposal is
    rejected when it makes a self-loop or an edge already present, or when two proposals of the round
    make the same edge, so the graph stays simple. Undirected edges are flipped at random first, so
    both swap orientations occur.

    Parameters
    ----------
    edges
        int (2, E): one column per edge; undirected edges stored once per pair, no duplicates.
    n_nodes
        Number of nodes (indices lie in ``0..n_nodes-1``).
    n_swaps
        Successful swaps to make; default ``10 * E`` (each edge moved about 20 times).
    directed
        Keep in- and out-degrees of directed edges.
    seed
        Seed of the random pairing.
    max_rounds
        Stop after this many rounds even if fewer swaps succeeded (tiny or saturated graphs).

    Returns
    -------
    np.ndarray
        int64 (2, E), the rewired edges.
    """
    edges = np.asarray(edges, dtype=np.int64)
    if edges.ndim != 2 or edges.shape[0] != 2:
        raise MalformedInputError(f"edges must have shape (2, E), got {edges.shape}")
    src, dst = edges[0].copy(), edges[1].copy()
    n_edges = len(src)
    if n_edges < 2:
        return np.stack([src, dst])
    keys = _keys(src, dst, n_nodes, directed)
    if len(np.unique(keys)) != n_edges or (src == dst).any():
        raise MalformedInputError(
            "double_edge_swap needs a simple graph: no self-loops, each (unordered, unless directed) "
            "pair once; deduplicate the edges first"
        )
    target = 10 * n_edges if n_swaps is None else int(n_swaps)
    rng = np.random.default_rng(seed)
    done = 0
    for _ in range(max_rounds):
        if done >= target:
            break
        if not directed:
            flip = rng.random(n_edges) < 0.5
            src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
        order = rng.permutation(n_edges)
        half = n_edges // 2
        i, j = order[:half], order[half : 2 * half]
        # (a, b), (c, d) -> (a, d), (c, b)
        a, b, c, d = src[i], dst[i], src[j], dst[j]
        new1, new2 = _keys(a, d, n_nodes, directed), _keys(c, b, n_nodes, directed)
        ok = (a != d) & (c != b) & (new1 != new2)
        ok &= ~np.isin(new1, keys) & ~np.isin(new2, keys)
        proposed = np.concatenate([new1[ok], new2[ok]])
        unique, counts = np.unique(proposed, return_counts=True)
        clash = unique[counts > 1]
        ok[ok] &= ~(np.isin(new1[ok], clash) | np.isin(new2[ok], clash))
        take = np.flatnonzero(ok)[: max(target - done, 0)]
        dst[i[take]], dst[j[take]] = d[take], b[take]
        keys = _keys(src, dst, n_nodes, directed)
        done += len(take)
    if done < target:
        logger.warning("double_edge_swap: %d of %d swaps after %d rounds (graph nearly saturated)",
                       done, target, max_rounds)
    return np.stack([src, dst])


def rewire_knowledge_graph(kg, *, seed: int = 0, kinds: tuple[str, ...] = REWIRED_KINDS, n_swaps_per_edge: int = 10):
    """A copy of ``kg`` whose signaling edges are rewired with degrees preserved, per edge kind.

    PPI edges are rewired as undirected, ligand -> receptor edges as directed; internal RNA -> protein
    edges, nodes, text and sequences are unchanged. Rewired edges get the mean weight of their kind.

    Parameters
    ----------
    kg
        A :class:`celltosg.kg.KnowledgeGraph`.
    seed
        Seed of the swaps.
    kinds
        Edge kinds to rewire.
    n_swaps_per_edge
        Successful swaps per edge of each kind.
    """
    import pandas as pd

    from celltosg.kg import KnowledgeGraph

    parts = []
    for offset, (kind, group) in enumerate(kg.edges.groupby("kind", sort=True)):
        if kind in kinds and len(group) > 1:
            edges = group[["source", "target"]].to_numpy(dtype=np.int64).T
            rewired = double_edge_swap(
                edges, n_nodes=kg.n_nodes, n_swaps=n_swaps_per_edge * len(group),
                directed=kind != "ppi", seed=seed + offset,
            )
            group = group.copy()
            group["source"], group["target"] = rewired[0].astype(np.int32), rewired[1].astype(np.int32)
            group["weight"] = np.float32(group["weight"].mean())
            group["provenance"] = f"rewired(seed={seed})"
        parts.append(group)
    edges = pd.concat(parts).sort_index()
    return KnowledgeGraph(
        kg.nodes, edges, name=f"{kg.name}[rewired seed={seed}]", checksum=kg.checksum, pack_dir=kg.pack_dir,
        sequences=kg.sequences, genesets=kg.genesets, parent_index=kg.parent_index,
    )


