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
SHAPE_NAMES = {"o": "circle", "s": "square"}
EDGE_STYLES = {"internal": ("0.55", "dotted"), "ppi": ("0.7", "solid"), "ligand_receptor": ("tab:green", "dashed")}
N_LABELS = 28


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # a renderer for text extents (adjustText) without pyplot
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
                  n_labels: int = N_LABELS, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Draw the core subgraph (see :mod:`celltosg.explain._layout` for the layout).

    Colour = signed importance on a diverging symmetric-log scale centred at zero (red pushes towards the
    class, blue away); shape = node type (circle RNA, square protein); large with a black outline = seed, small with a
    grey outline = connector; edge style = edge kind; labels for the ``n_labels`` best genes only, moved
    apart by adjustText. Unconnected top nodes are not drawn (they are listed in ``nodes.csv``).

    Parameters
    ----------
    sub
        The subgraph.
    stem
        Output path without suffix; one file per format is written.
    seed
        Seed of the layout.

    Returns
    -------
    list[Path]
        The files written.
    """
    import networkx as nx
    from adjustText import adjust_text
    from matplotlib.colors import SymLogNorm
    from matplotlib.lines import Line2D

    from celltosg.explain._layout import community_layout, label_nodes

    graph = sub.to_networkx()
    pos, _ = community_layout(graph, seed=seed)
    fig, ax = _figure(13, 11)
    core = sub.core
    scores = core["score"].to_numpy(dtype=float)
    bound = float(np.nanmax(np.abs(scores))) if np.isfinite(scores).any() and np.nanmax(np.abs(scores)) > 0 else 1.0
    magnitude = np.abs(scores[np.isfinite(scores) & (scores != 0)])
    # symmetric log scale: scores span orders of magnitude; linear below the 10th percentile of |score|
    norm = SymLogNorm(linthresh=float(np.quantile(magnitude, 0.1)) if magnitude.size else 1.0, vmin=-bound, vmax=bound)
    handles = []
    for kind, (colour, style) in EDGE_STYLES.items():
        edgelist = [(u, v) for u, v, k in graph.edges(data="kind") if k == kind]
        if edgelist:
            nx.draw_networkx_edges(graph, pos, edgelist=edgelist, edge_color=colour, style=style, width=0.7,
                                   alpha=0.8, ax=ax)
            handles.append(Line2D([], [], color=colour, linestyle=style, label=f"{kind.replace('_', '-')} edge"))
    collection = None
    for node_type, shape in NODE_SHAPES.items():
        members = core.loc[core["type"] == node_type]
        if members.empty:
            continue
        seeds = members["role"].eq("seed").to_numpy()
        collection = nx.draw_networkx_nodes(
            graph, pos, nodelist=members["node_index"].tolist(), node_shape=shape,
            node_color=np.nan_to_num(members["score"].to_numpy(dtype=float)), cmap="RdBu_r", vmin=-bound,
            vmax=bound, node_size=np.where(seeds, 150, 50), edgecolors=np.where(seeds, "black", "0.55"),
            linewidths=0.7, ax=ax)
        collection.set_norm(norm)
        handles.append(Line2D([], [], marker=shape, linestyle="", markerfacecolor="white", markeredgecolor="black",
                              markersize=8, label=f"{node_type} ({SHAPE_NAMES[shape]})"))
    handles += [Line2D([], [], marker="o", linestyle="", markerfacecolor="0.85", markeredgecolor="black",
                       markersize=9, label="seed (top-ranked)"),
                Line2D([], [], marker="o", linestyle="", markerfacecolor="0.85", markeredgecolor="0.55",
                       markersize=5, label="connector")]
    symbol = dict(zip(core["node_index"].astype(int), core["symbol"].astype(str), strict=True))
    texts = [ax.text(*pos[node], symbol[node], fontsize=9, fontweight="bold", ha="center", va="center",
                     bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75})
             for node in label_nodes(sub, n_labels)]
    if collection is not None:
        fig.colorbar(collection, ax=ax, shrink=0.5, pad=0.01, label="importance (signed, symmetric log scale; + = towards the class)")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.0), ncol=4, fontsize=9, frameon=False)
    ax.set_title(title or "core subgraph", pad=22)
    n_unconnected = int((sub.nodes["role"] == "unconnected").sum())
    ax.text(0.5, 1.0, f"{len(core)} nodes; labels: the {len(texts)} best-ranked genes"
            + (f"; {n_unconnected} top nodes not connectable within the budget are listed in nodes.csv"
               if n_unconnected else ""), fontsize=9, ha="center", va="bottom", transform=ax.transAxes)
    ax.set_axis_off()
    ax.margins(0.04)
    if texts:
        coords = np.array([pos[n] for n in graph.nodes])
        adjust_text(texts, x=coords[:, 0], y=coords[:, 1], ax=ax, expand=(1.3, 1.5), min_arrow_len=0,
                    arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.6})
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
