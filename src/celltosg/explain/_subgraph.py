"""The core subgraph: at most ``top_k`` nodes (seeds plus connectors), grown from the best-scored nodes.

Rule (greedy by rank, so connectors are spent on the best-scored seeds first):

1. Candidates are the nodes in order of ranking score (ties by node index; NaN never taken). The
   knowledge graph is taken as undirected (every edge kind). The core lives in its largest connected
   component: candidates outside it (a gene whose protein has no interaction partner, say) are
   ``unconnected``.
2. The first candidate in that component starts the core as a seed.
3. Each next candidate joins as a ``seed`` when a shortest path from it to the core has at most
   ``max_connectors`` intermediate nodes and the core, with the candidate and those intermediates
   (``connector``), still has at most ``top_k`` nodes; a candidate already in the core as a connector
   becomes a seed at no cost, and so does an ``unconnected`` node that a later path passes through.
   Otherwise it is listed apart with role ``unconnected`` (not part of the
   core, not drawn). The walk stops when the core holds ``top_k`` nodes or candidates run out.
4. The core is connected by construction; its edges are every knowledge-graph edge among its nodes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from celltosg.errors import CellTOSGError

if TYPE_CHECKING:
    import networkx as nx

    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CoreSubgraph:
    """Nodes and edges of a core subgraph.

    Attributes
    ----------
    nodes
        One row per node: ``node_index, node_id, type, symbol, score, rank`` (1 = most important over the
        whole graph, 0 = unranked), ``role`` (``seed`` | ``connector`` | ``unconnected``: a top node that
        could not be attached within the budget, listed but not part of the core).
    edges
        One row per knowledge-graph edge among the core's nodes: ``source, target, kind, weight, score`` (edge
        importance, the larger of its two directions; NaN when none was scored).
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame

    @property
    def core(self) -> pd.DataFrame:
        """The rows of the core's nodes (role ``seed`` or ``connector``)."""
        return self.nodes[self.nodes["role"] != "unconnected"]

    @property
    def genes(self) -> list[str]:
        """Unique symbols of the core's nodes, in node order."""
        return list(dict.fromkeys(s for s in self.core["symbol"].astype(str) if s))

    def to_networkx(self) -> nx.Graph:
        """An undirected networkx graph keyed by node index, with every column as an attribute."""
        import networkx as nx

        graph = nx.Graph()
        for row in self.core.itertuples(index=False):
            graph.add_node(int(row.node_index), **{k: _plain(v) for k, v in row._asdict().items()})
        for row in self.edges.itertuples(index=False):
            attrs = {k: _plain(v) for k, v in row._asdict().items() if k not in ("source", "target")}
            graph.add_edge(int(row.source), int(row.target), **attrs)
        return graph


def _plain(value):
    """GraphML-safe scalar (numpy scalars -> Python; NaN kept as float)."""
    return value.item() if isinstance(value, np.generic) else value


def top_nodes(ranking: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` largest finite scores, highest first, ties by smaller index."""
    finite = np.flatnonzero(np.isfinite(ranking))
    order = finite[np.lexsort((finite, -ranking[finite]))]
    return order[:top_k]


def grow_core(edges: np.ndarray, n_nodes: int, ranking: np.ndarray, top_k: int,
              max_connectors: int = 2) -> tuple[list[int], list[int], list[int]]:
    """Steps 1-3 of the module rule.

    Parameters
    ----------
    edges
        int (2, E) knowledge-graph edges (direction ignored).
    n_nodes
        N.
    ranking
        (N,) higher = more important; NaN = never taken.
    top_k
        Most nodes in the core (seeds plus connectors).
    max_connectors
        Most intermediate nodes spent to attach one seed.

    Returns
    -------
    seeds, connectors, unconnected
        Node indices: seeds in rank order, connectors in the order they were added, unconnected
        candidates in rank order.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = np.asarray(edges, dtype=np.int64)
    graph = coo_matrix((np.ones(2 * len(src)), (np.concatenate([src, dst]), np.concatenate([dst, src]))),
                       shape=(n_nodes, n_nodes)).tocsr()
    _, component = connected_components(graph, directed=False)
    giant = component == np.bincount(component).argmax()
    in_core = np.zeros(n_nodes, dtype=bool)
    seeds: list[int] = []
    extra: list[int] = []
    unconnected: list[int] = []
    for node in top_nodes(ranking, n_nodes).tolist():
        size = len(seeds) + len(extra)
        if size >= top_k:
            break
        if in_core[node]:  # a connector that is itself a top node
            extra.remove(node)
            seeds.append(node)
            continue
        if not giant[node]:
            unconnected.append(node)
            continue
        if not seeds:
            seeds.append(node)
            in_core[node] = True
            continue
        path = _path_to_core(graph, node, in_core, min(max_connectors, top_k - size - 1))
        if path is None:
            unconnected.append(node)
            continue
        seeds.append(node)
        for step in path:  # a top node listed unconnected that a later path passes through is a seed
            (seeds if step in unconnected else extra).append(step)
        unconnected = [u for u in unconnected if u not in path]
        in_core[[node, *path]] = True
    position = {node: i for i, node in enumerate(top_nodes(ranking, n_nodes).tolist())}
    return sorted(seeds, key=position.__getitem__), extra, unconnected


def _path_to_core(graph, node: int, in_core: np.ndarray, max_connectors: int) -> list[int] | None:
    """Intermediate nodes of a shortest path from ``node`` to the core (the core node of smallest index
    among the nearest), or None when every such path needs more than ``max_connectors`` of them."""
    from scipy.sparse.csgraph import dijkstra

    if max_connectors < 0:
        return None
    distance, predecessor = dijkstra(graph, indices=node, unweighted=True, limit=max_connectors + 1.5,
                                     return_predecessors=True)
    reached = np.flatnonzero(in_core & np.isfinite(distance))
    if not reached.size:
        return None
    target = int(reached[np.argmin(distance[reached])])
    path = []
    step = int(predecessor[target])
    while step != node:
        path.append(step)
        step = int(predecessor[step])
    return path  # from the core outwards


def core_subgraph(kg: KnowledgeGraph, scores: np.ndarray, top_k: int = 120, *, ranking: np.ndarray | None = None,
                  edge_index: np.ndarray | None = None, edge_scores: np.ndarray | None = None,
                  max_connectors: int = 2) -> CoreSubgraph:
    """A connected core of at most ``top_k`` nodes grown from the best nodes by ``ranking`` (module rule).

    Parameters
    ----------
    kg
        The knowledge graph the scores index (N = ``kg.n_nodes``).
    scores
        (N,) importance per node, reported in the node table.
    top_k
        Most nodes in the core (seeds plus connectors).
    ranking
        (N,) what nodes are ranked by (higher = more important); defaults to ``scores``.
    edge_index, edge_scores
        Optional (2, E) edges and (E,) importance, copied onto the subgraph's edges.
    max_connectors
        Most connecting nodes spent to attach one seed.

    Returns
    -------
    CoreSubgraph
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (kg.n_nodes,) or (ranking is not None and np.shape(ranking) != (kg.n_nodes,)):
        raise CellTOSGError(f"node scores of shape {scores.shape} for a knowledge graph of {kg.n_nodes} nodes; "
                            "score the same graph the model was built on")
    if top_k < 1:
        raise CellTOSGError(f"top_k must be at least 1, got {top_k}")
    ranking = scores if ranking is None else np.asarray(ranking, dtype=np.float64)
    table = kg.edges
    edges = table[["source", "target"]].to_numpy(dtype=np.int64).T
    seeds, extra, unconnected = grow_core(edges, kg.n_nodes, ranking, top_k, max_connectors)
    members = np.array(seeds + extra + unconnected, dtype=np.int64)
    rank = np.zeros(kg.n_nodes, dtype=np.int64)
    rank[top_nodes(ranking, kg.n_nodes)] = np.arange(1, np.isfinite(ranking).sum() + 1)
    info = kg.nodes.iloc[members]
    nodes = pd.DataFrame({
        "node_index": members,
        "node_id": info["node_id"].to_numpy(),
        "type": info["type"].to_numpy(),
        "symbol": info["symbol"].fillna("").to_numpy(),
        "score": scores[members],
        "rank": rank[members],
        "role": ["seed"] * len(seeds) + ["connector"] * len(extra) + ["unconnected"] * len(unconnected),
    })
    inside = np.zeros(kg.n_nodes, dtype=bool)
    inside[seeds + extra] = True
    kept = table[inside[edges[0]] & inside[edges[1]]]
    sub_edges = kept[["source", "target", "kind", "weight"]].reset_index(drop=True)
    sub_edges["score"] = _edge_scores(sub_edges, edge_index, edge_scores)
    log.info("core subgraph: %d seeds, %d connectors, %d edges; %d top nodes unconnected", len(seeds), len(extra),
             len(sub_edges), len(unconnected))
    return CoreSubgraph(nodes=nodes, edges=sub_edges)


def _edge_scores(edges: pd.DataFrame, edge_index: np.ndarray | None, scores: np.ndarray | None) -> np.ndarray:
    """(len(edges),) the larger importance of each edge's two directions, NaN when unscored."""
    out = np.full(len(edges), np.nan)
    if edge_index is None or scores is None or not len(edges):
        return out
    members = np.union1d(edges["source"].to_numpy(), edges["target"].to_numpy())
    near = np.isin(edge_index[0], members) & np.isin(edge_index[1], members)
    lookup: dict[tuple[int, int], float] = {}
    for s, t, value in zip(edge_index[0][near].tolist(), edge_index[1][near].tolist(),
                           np.asarray(scores)[near].tolist(), strict=True):
        key = (min(s, t), max(s, t))
        lookup[key] = max(value, lookup.get(key, -np.inf))
    for row, (s, t) in enumerate(zip(edges["source"].tolist(), edges["target"].tolist(), strict=True)):
        out[row] = lookup.get((min(s, t), max(s, t)), np.nan)
    return out
