"""Positions and labels of the core subgraph, shared by the static figure and the interactive view.

Layout by communities: Louvain communities of the core (networkx, seeded); the communities are placed by a
spring layout of the graph of communities (edge weight = edges between them), each one's nodes by a spring
layout of its own induced subgraph inside a disc of radius proportional to the square root of its size.
Dense modules then sit together and apart from each other instead of one ball.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import networkx as nx

    from celltosg.explain._subgraph import CoreSubgraph


def community_layout(graph: nx.Graph, seed: int = 0) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """Node positions (in about [-1, 1]^2) and community id per node (0 = largest community).

    Parameters
    ----------
    graph
        Undirected graph.
    seed
        Seed of the community detection and of the spring layouts.

    Returns
    -------
    positions, community
        node -> float (2,), node -> community index.
    """
    import networkx as nx

    if graph.number_of_nodes() == 0:
        return {}, {}
    groups = sorted(nx.community.louvain_communities(graph, seed=seed), key=lambda c: (-len(c), min(c)))
    community = {node: i for i, group in enumerate(groups) for node in group}
    between = nx.Graph()
    between.add_nodes_from(range(len(groups)))
    for u, v in graph.edges:
        a, b = community[u], community[v]
        if a != b:
            weight = between.get_edge_data(a, b, {"weight": 0})["weight"]
            between.add_edge(a, b, weight=weight + 1)
    radius = 0.6 * np.sqrt(np.array([len(g) for g in groups]) / graph.number_of_nodes())
    centres = nx.spring_layout(between, seed=seed, weight="weight", k=3.0 / np.sqrt(len(groups)))
    positions = {}
    for i, group in enumerate(groups):
        inner = nx.spring_layout(graph.subgraph(group), seed=seed, k=1.5 / np.sqrt(len(group)), center=(0, 0))
        for node, xy in inner.items():
            positions[node] = np.asarray(centres[i]) + np.asarray(xy) * radius[i]
    coords = np.array(list(positions.values()))
    middle, extent = coords.mean(0), max(float(np.abs(coords - coords.mean(0)).max()), 1e-9)
    return {node: (xy - middle) / extent for node, xy in positions.items()}, community


def label_nodes(sub: CoreSubgraph, n_labels: int = 28) -> list[int]:
    """Node indices to label: the best-ranked node of each of the ``n_labels`` best-ranked gene symbols.

    A gene's RNA and protein nodes share its score; one label per gene keeps the picture readable.
    """
    core = sub.core
    core = core[core["symbol"].astype(str) != ""]
    rank = core["rank"].where(core["rank"] > 0, np.iinfo(np.int64).max)
    best = core.assign(_rank=rank).sort_values(["_rank", "node_index"]).drop_duplicates("symbol")
    return best["node_index"].astype(int).head(n_labels).tolist()
