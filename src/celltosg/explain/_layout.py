"""Positions and labels of the core subgraph, shared by the static figure and the interactive view.

Layout by communities: Louvain communities of the core (networkx, seeded); the communities are placed by a
spring layout of the graph of communities (edge weight = edges between them), then pushed apart until their
discs (radius = square root of the node count) do not overlap; each one's nodes by a Kamada-Kawai layout of
its own induced subgraph (spring layout when it is not connected) inside its disc. Dense modules then sit
together and apart from each other instead of one ball.
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
    radius = np.sqrt(np.array([len(g) for g in groups], dtype=float))
    centres = nx.spring_layout(between, seed=seed, weight="weight", k=3.0 / np.sqrt(len(groups)))
    centres = _separate(np.array([centres[i] for i in range(len(groups))]), radius)
    positions = {}
    for i, group in enumerate(groups):
        members = graph.subgraph(group)
        inner = (nx.kamada_kawai_layout(members, center=(0, 0)) if len(group) > 2 and nx.is_connected(members)
                 else nx.spring_layout(members, seed=seed, k=1.5 / np.sqrt(len(group)), center=(0, 0)))
        for node, xy in inner.items():
            positions[node] = np.asarray(centres[i]) + np.asarray(xy) * radius[i]
    coords = np.array(list(positions.values()))
    middle, extent = coords.mean(0), max(float(np.abs(coords - coords.mean(0)).max()), 1e-9)
    return {node: (xy - middle) / extent for node, xy in positions.items()}, community


def _separate(centres: np.ndarray, radius: np.ndarray, margin: float = 1.2, rounds: int = 300) -> np.ndarray:
    """Centres (k, 2) pushed apart pairwise until no two community discs overlap (``radius`` (k,))."""
    centres = centres * radius.sum() / 2  # layout units: a community's disc has about its node count as area
    for _ in range(rounds):
        moved = False
        for i in range(len(centres)):
            for j in range(i + 1, len(centres)):
                gap = centres[j] - centres[i]
                distance = float(np.linalg.norm(gap))
                need = margin * (radius[i] + radius[j])
                if distance < need:
                    direction = gap / distance if distance > 1e-9 else np.array([np.cos(i + j), np.sin(i + j)])
                    centres[i] -= direction * (need - distance) / 2
                    centres[j] += direction * (need - distance) / 2
                    moved = True
        if not moved:
            break
    return centres


def label_nodes(sub: CoreSubgraph, n_labels: int = 28) -> list[int]:
    """Node indices to label: the best-ranked node of each of the ``n_labels`` best-ranked gene symbols.

    A gene's RNA and protein nodes share its score; one label per gene keeps the picture readable.
    """
    core = sub.core
    core = core[core["symbol"].astype(str) != ""]
    rank = core["rank"].where(core["rank"] > 0, np.iinfo(np.int64).max)
    best = core.assign(_rank=rank).sort_values(["_rank", "node_index"]).drop_duplicates("symbol")
    return best["node_index"].astype(int).head(n_labels).tolist()
