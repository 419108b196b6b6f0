"""The core subgraph: the top-k nodes by importance, kept connected through the knowledge graph.

Rule:

1. Seeds = the ``top_k`` nodes of highest ranking score (ties broken by node index; NaN never selected).
2. The knowledge graph is taken as undirected (every edge kind). The seeds' induced subgraph falls into
   components; each is contracted to one terminal.
3. Within every connected component of the contracted graph holding two or more terminals, a Steiner
   tree over the terminals with unit edge weights (networkx, Mehlhorn's 2-approximation) gives the
   connecting nodes. With unit weights, a tree's edges number (connectors + terminals - 1), so this is
   the fewest connecting nodes up to the approximation. Seeds that the graph cannot connect stay isolated.
4. The core subgraph is the subgraph induced by seeds and connectors: every knowledge-graph edge among
   them is kept.
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
        whole graph, 0 = unranked), ``role`` (``seed`` | ``connector``).
    edges
        One row per knowledge-graph edge among the nodes: ``source, target, kind, weight, score`` (edge
        importance, the larger of its two directions; NaN when none was scored).
    """

    nodes: pd.DataFrame
    edges: pd.DataFrame

    @property
    def genes(self) -> list[str]:
        """Unique symbols of the subgraph's nodes, in node order."""
        return list(dict.fromkeys(s for s in self.nodes["symbol"].astype(str) if s))

    def to_networkx(self) -> nx.Graph:
        """An undirected networkx graph keyed by node index, with every column as an attribute."""
        import networkx as nx

        graph = nx.Graph()
        for row in self.nodes.itertuples(index=False):
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


def connectors(edges: np.ndarray, n_nodes: int, seeds: np.ndarray) -> np.ndarray:
    """Non-seed nodes that connect the seeds (steps 2-3 of the module rule).

    Parameters
    ----------
    edges
        int (2, E) knowledge-graph edges (direction ignored).
    n_nodes
        N.
    seeds
        int (k,) seed node indices.

    Returns
    -------
    np.ndarray
        Sorted int64 indices of the connecting nodes.
    """
    import networkx as nx
    from networkx.algorithms.approximation import steiner_tree
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = np.asarray(edges, dtype=np.int64)
    is_seed = np.zeros(n_nodes, dtype=bool)
    is_seed[seeds] = True
    inner = is_seed[src] & is_seed[dst]
    induced = coo_matrix((np.ones(inner.sum()), (src[inner], dst[inner])), shape=(n_nodes, n_nodes))
    _, seed_component = connected_components(induced, directed=False)
    # contract: a seed becomes terminal n_nodes + (its induced component), other nodes keep their index
    label = np.arange(n_nodes, dtype=np.int64)
    label[is_seed] = n_nodes + seed_component[is_seed]
    a, b = label[src], label[dst]
    keep = a != b
    graph = nx.Graph()
    graph.add_edges_from(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    terminals = set(label[seeds].tolist())
    graph.add_nodes_from(terminals)
    found: set[int] = set()
    for component in nx.connected_components(graph):
        inside = terminals & component
        if len(inside) < 2:
            continue
        part = graph.subgraph(component).copy() if len(component) < graph.number_of_nodes() else graph
        tree = steiner_tree(part, list(inside), method="mehlhorn")
        found.update(node for node in tree.nodes if node < n_nodes)
    isolated = sum(1 for component in nx.connected_components(graph) if len(terminals & component) == 1)
    if isolated > 1:
        log.info("%d groups of seeds cannot be connected through the knowledge graph", isolated)
    return np.array(sorted(found), dtype=np.int64)


def core_subgraph(kg: KnowledgeGraph, scores: np.ndarray, top_k: int = 120, *, ranking: np.ndarray | None = None,
                  edge_index: np.ndarray | None = None, edge_scores: np.ndarray | None = None) -> CoreSubgraph:
    """Top-``top_k`` nodes by ``ranking``, kept connected through ``kg`` (see the module rule).

    Parameters
    ----------
    kg
        The knowledge graph the scores index (N = ``kg.n_nodes``).
    scores
        (N,) importance per node, reported in the node table.
    top_k
        Number of seed nodes.
    ranking
        (N,) what nodes are ranked by (higher = more important); defaults to ``scores``.
    edge_index, edge_scores
        Optional (2, E) edges and (E,) importance, copied onto the subgraph's edges.

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
    seeds = top_nodes(ranking, top_k)
    table = kg.edges
    edges = table[["source", "target"]].to_numpy(dtype=np.int64).T
    extra = connectors(edges, kg.n_nodes, seeds)
    members = np.concatenate([seeds, extra])
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
        "role": ["seed"] * len(seeds) + ["connector"] * len(extra),
    })
    inside = np.zeros(kg.n_nodes, dtype=bool)
    inside[members] = True
    kept = table[inside[edges[0]] & inside[edges[1]]]
    sub_edges = kept[["source", "target", "kind", "weight"]].reset_index(drop=True)
    sub_edges["score"] = _edge_scores(sub_edges, edge_index, edge_scores)
    log.info("core subgraph: %d seeds, %d connectors, %d edges", len(seeds), len(extra), len(sub_edges))
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
