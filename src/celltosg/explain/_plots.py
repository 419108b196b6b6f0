"""Figures: the core subgraph as a network, and an enrichment dot plot.

Figures are plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas: pyplot and the global
backend are never touched, so plotting works headless and inside notebooks alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from celltosg.explain._subgraph import CoreSubgraph

NODE_SHAPES = {"rna": "o", "protein": "s"}
EDGE_STYLES = {"internal": ("0.6", "dotted"), "ppi": ("0.45", "solid"), "ligand_receptor": ("tab:red", "solid")}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    from celltosg.io_utils import atomic_file

    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def plot_subgraph(sub: CoreSubgraph, stem: str | os.PathLike, *, title: str = "", seed: int = 0,
                  formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Draw the core subgraph: colour = importance, shape = node type (circle RNA, square protein).

    Parameters
    ----------
    sub
        The subgraph.
    stem
        Output path without suffix; one file per format is written.
    seed
        Seed of the spring layout.

    Returns
    -------
    list[Path]
        The files written.
    """
    import networkx as nx
    from matplotlib import colormaps

    graph = sub.to_networkx()
    n = max(graph.number_of_nodes(), 1)
    size = float(np.clip(np.sqrt(n) * 1.6, 6, 22))
    fig, ax = _figure(size, size * 0.8)
    pos = nx.spring_layout(graph, seed=seed, k=1.5 / np.sqrt(n), iterations=100)
    scores = sub.nodes.set_index("node_index")["score"]
    finite = scores[np.isfinite(scores)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    cmap = colormaps["viridis"]
    for kind, (colour, style) in EDGE_STYLES.items():
        edgelist = [(u, v) for u, v, k in graph.edges(data="kind") if k == kind]
        nx.draw_networkx_edges(graph, pos, edgelist=edgelist, edge_color=colour, style=style, width=0.8,
                               alpha=0.7, ax=ax, label=kind.replace("_", "-") if edgelist else None)
    collection = None
    for node_type, shape in NODE_SHAPES.items():
        members = sub.nodes.loc[sub.nodes["type"] == node_type]
        if members.empty:
            continue
        seeds = members["role"].eq("seed").to_numpy()
        collection = nx.draw_networkx_nodes(
            graph, pos, nodelist=members["node_index"].tolist(), node_shape=shape,
            node_color=np.nan_to_num(members["score"].to_numpy(), nan=vmin), cmap=cmap, vmin=vmin, vmax=vmax,
            node_size=np.where(seeds, 260, 120), edgecolors=np.where(seeds, "black", "0.6"), linewidths=0.8,
            ax=ax, label=f"{node_type} ({'circle' if shape == 'o' else 'square'})",
        )
    labels = dict(zip(sub.nodes["node_index"].astype(int), sub.nodes["symbol"].astype(str), strict=True))
    spread = np.ptp(np.array(list(pos.values())), axis=0)[1] if len(pos) > 1 else 1.0
    above = {node: (x, y + 0.035 * (spread or 1.0)) for node, (x, y) in pos.items()}
    nx.draw_networkx_labels(graph, above, labels=labels, font_size=7, verticalalignment="bottom", ax=ax)
    if collection is not None:
        fig.colorbar(collection, ax=ax, shrink=0.6, label="importance")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=5, fontsize=8, frameon=False)
    ax.set_title(title or "core subgraph")
    ax.text(0.5, 1.0, "large, black outline = top-k seed; small, grey outline = connector", fontsize=8,
            ha="center", va="bottom", transform=ax.transAxes)
    ax.set_axis_off()
    return _save(fig, Path(stem), formats)


def plot_enrichment(table: pd.DataFrame, stem: str | os.PathLike, *, top_n: int = 20, title: str = "",
                    formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Dot plot of the ``top_n`` terms of lowest p: x = fold enrichment, size = overlap, colour = -log10 q.

    Parameters
    ----------
    table
        An :func:`~celltosg.explain.enrichment` table.
    stem
        Output path without suffix.

    Returns
    -------
    list[Path]
        The files written.
    """
    top = table.nsmallest(top_n, "p").iloc[::-1]
    fig, ax = _figure(8, 1.2 + 0.32 * max(len(top), 1))
    if top.empty:
        ax.text(0.5, 0.5, "no enriched terms", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        labels = [f"{name[:55]} ({collection})" for name, collection in
                  zip(top["term_name"].astype(str), top["collection"], strict=True)]
        colour = -np.log10(np.clip(top["q"].to_numpy(dtype=float), 1e-300, 1.0))
        points = ax.scatter(top["fold_enrichment"], np.arange(len(top)), s=30 + 25 * top["overlap"],
                            c=colour, cmap="plasma", edgecolors="black", linewidths=0.4)
        ax.set_yticks(np.arange(len(top)), labels, fontsize=8)
        ax.set_xlabel("fold enrichment")
        fig.colorbar(points, ax=ax, label="-log10 q (BH)")
        for overlap in sorted({int(top["overlap"].min()), int(top["overlap"].max())}):
            ax.scatter([], [], s=30 + 25 * overlap, c="white", edgecolors="black", label=f"{overlap} genes")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.set_title(title or "enrichment of the core subgraph")
    return _save(fig, Path(stem), formats)
