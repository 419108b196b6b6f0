"""The core subgraph: the top-k nodes by importance, kept connected through the knowledge graph.

Rule:

1. Seeds = the ``top_k`` nodes of highest ranking score (ties broken by node index; NaN never selected).
2. The knowledge graph is taken as undirected (every edge kind). The seeds' induced subgraph falls into
   components; each is contracted to one terminal.
3. A Steiner forest over the terminals with unit edge weights (Mehlhorn's 2-approximation, one tree per
   connected component of the graph) gives the connecting nodes. With unit weights a tree's edges number
   (connectors + terminals - 1), so this is the fewest connecting nodes up to the approximation. Seeds
   that the graph cannot connect stay isolated.
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

    Mehlhorn's construction on the contracted graph: one multi-source breadth-first search from the
    terminals (scipy) gives every node its nearest terminal; each edge joining two Voronoi regions
    proposes a path between their terminals of length ``d(u) + 1 + d(v)``; a minimum spanning forest
    (networkx) over the shortest proposals picks the paths; their union's spanning forest, with
    non-terminal leaves pruned, is the Steiner tree.

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
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra

    src, dst = np.asarray(edges, dtype=np.int64)
    is_seed = np.zeros(n_nodes, dtype=bool)
    is_seed[seeds] = True
    inner = is_seed[src] & is_seed[dst]
    induced = coo_matrix((np.ones(inner.sum()), (src[inner], dst[inner])), shape=(n_nodes, n_nodes))
    _, seed_component = connected_components(induced, directed=False)
    # contract: a seed becomes terminal n_nodes + (its induced component); other nodes keep their index
    label = np.arange(n_nodes, dtype=np.int64)
    label[is_seed] = n_nodes + seed_component[is_seed]
    terminals = np.unique(label[seeds])
    if len(terminals) < 2:
        return np.zeros(0, dtype=np.int64)
    size = n_nodes + int(seed_component.max()) + 1
    a, b = label[src], label[dst]
    keep = a != b
    a, b = a[keep], b[keep]
    graph = coo_matrix((np.ones(2 * len(a)), (np.concatenate([a, b]), np.concatenate([b, a]))),
                       shape=(size, size)).tocsr()
    distance, predecessor, nearest = dijkstra(graph, indices=terminals, unweighted=True, min_only=True,
                                              return_predecessors=True)
    reach = np.isfinite(distance[a]) & np.isfinite(distance[b]) & (nearest[a] != nearest[b])
    u, v = a[reach], b[reach]
    if not len(u):
        return np.zeros(0, dtype=np.int64)
    cost = distance[u] + 1 + distance[v]
    s, t = np.minimum(nearest[u], nearest[v]), np.maximum(nearest[u], nearest[v])
    order = np.lexsort((v, u, cost, t, s))  # per terminal pair, the cheapest bridge (ties: smallest nodes)
    first = np.ones(len(order), dtype=bool)
    first[1:] = (s[order][1:] != s[order][:-1]) | (t[order][1:] != t[order][:-1])
    best = order[first]
    return _steiner_nodes(best, u, v, s, t, cost, predecessor, set(terminals.tolist()), n_nodes, (a, b))


def _to_terminal(node: int, predecessor: np.ndarray) -> list[int]:
    """``[node, ..., its nearest terminal]`` along the search's predecessors."""
    path = [node]
    while predecessor[path[-1]] >= 0:
        path.append(int(predecessor[path[-1]]))
    return path


def _steiner_nodes(best, u, v, s, t, cost, predecessor, terminals: set[int], n_nodes: int,
                   edges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Connecting nodes from the cheapest Voronoi bridges (the spanning-forest steps of Mehlhorn).

    The spanning forest is taken over every graph edge among the paths' nodes (not only the path edges),
    which lets it take shortcuts between paths.
    """
    import networkx as nx

    proposals = nx.Graph()
    for i in best.tolist():
        proposals.add_edge(int(s[i]), int(t[i]), weight=float(cost[i]), bridge=i)
    union = nx.Graph()
    for _, _, data in nx.minimum_spanning_edges(proposals, data=True, weight="weight"):
        bridge = data["bridge"]
        nx.add_path(union, _to_terminal(int(u[bridge]), predecessor)[::-1] + _to_terminal(int(v[bridge]), predecessor))
    a, b = edges
    on_paths = np.zeros(max(int(a.max()), int(b.max())) + 1, dtype=bool)
    on_paths[list(union.nodes)] = True
    inside = on_paths[a] & on_paths[b]
    union.add_edges_from(zip(a[inside].tolist(), b[inside].tolist(), strict=True))
    tree = nx.minimum_spanning_tree(union)
    leaves = [n for n in tree.nodes if tree.degree(n) == 1 and n not in terminals]
    while leaves:
        tree.remove_nodes_from(leaves)
        leaves = [n for n in tree.nodes if tree.degree(n) <= 1 and n not in terminals]
    return np.array(sorted(n for n in tree.nodes if n < n_nodes), dtype=np.int64)


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
