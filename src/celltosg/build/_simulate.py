"""Simulated single-cell atlases with known disease genes, for testing builds and explanations.

Model (all effects in log2 fold change on a cell's expression profile):

- genes: the knowledge pack's RNA symbols (``var_names``), Ensembl ids in ``var["gene_ids"]``;
  baseline log2 abundance ~ N(0, 2.5^2) per gene;
- cell types per tissue with marker genes (+4 for named markers found in the pack, +1.5..+3.5 on 3% of
  genes chosen at random) and a mild N(0, 0.3^2) shift of every gene;
- donor effect N(0, 0.15^2) per gene, batch (``dataset_id``, at least 8 donors each) effect N(0, 0.3^2) per gene and a batch
  library-size factor; sex genes (XIST for female; RPS4Y1, DDX3Y, UTY, KDM5D, EIF1AY for male); an age
  trend of +-0.02 per year on 1% of genes;
- each disease: a connected module of ``module_size`` PPI proteins (breadth-first from a random seed
  protein, neighbours in random order), mapped back to its genes (``disease_genes="module"``), or as many
  genes scattered over the graph with the module's expression distribution (``"random"``: each module
  gene swapped for one of the 5 non-module genes closest in mean log abundance); each gene shifted by
  +-``disease_effect`` x U(2/3, 4/3) log2 (80% up) in ``affected_fraction`` of the cell types of its
  tissue, in that disease's donors only;
- donors come in matched sets: per tissue one donor of each condition (``normal`` and every disease)
  sharing sex and age, all in one dataset, so each dataset holds cases and controls of the same sex and
  age; with ``confound`` each dataset holds a single condition instead (a deliberately confounded design);
- counts: library size 2,500 x lognormal(0, 0.35) x cell-type and batch factors; negative binomial with
  gene dispersion ``theta ~ 2 x lognormal(0, 0.5)`` (Poisson-gamma) for genes whose expected count can
  reach 0.5 at the median library, Poisson for the rest (drawn count by count, so the cost grows with
  counts rather than cells x genes; the NB excess variance ``mu^2 / theta`` is small there).

Files: one ``.h5ad`` per donor, or consecutive chunks of ``cells_per_file`` cells; ``ground_truth.json``
maps each disease to its module genes and ``simulation.json`` records every parameter. The same seed
writes byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltosg.errors import CellTOSGError
from celltosg.io_utils import atomic_dir
from celltosg.progress import progress

if TYPE_CHECKING:
    from celltosg.kg import KnowledgeGraph

logger = logging.getLogger(__name__)

LN2 = math.log(2.0)
MEDIAN_LIBRARY = 2500.0
NB_MIN_MEAN = 0.5
MODULE_PROTEINS = 20
DISEASE_EFFECT = 2.0
AFFECTED_FRACTION = 0.5
PLACEMENTS = ("module", "random")
_MATCH_POOL = 5
DATASET_DONORS = 8
_CHUNK_CELLS = 2048
_SAMPLE_CELLS = 16384

FEMALE_GENES = ("XIST",)
MALE_GENES = ("RPS4Y1", "DDX3Y", "UTY", "KDM5D", "EIF1AY")
_T = ("T cell", ("CD3E", "CD3D", "IL7R"))
_FIBRO = ("fibroblast", ("COL1A2", "DCN", "LUM"))
_ENDO = ("endothelial cell", ("PECAM1", "VWF", "CLDN5"))
_MACRO = ("macrophage", ("CD68", "C1QA", "CD163"))
CELL_TYPES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "blood": (_T, ("B cell", ("CD79A", "MS4A1", "CD19")), ("classical monocyte", ("CD14", "LYZ", "S100A8")),
              ("natural killer cell", ("GNLY", "NKG7", "KLRD1")), ("platelet", ("PPBP", "PF4"))),
    "lung": (("type II pneumocyte", ("SFTPC", "SFTPB", "NAPSA")), ("alveolar macrophage", ("MARCO", "FABP4")),
             _FIBRO, _ENDO, _T),
    "brain": (("neuron", ("SNAP25", "SYT1", "RBFOX3")), ("astrocyte", ("GFAP", "AQP4", "SLC1A2")),
              ("oligodendrocyte", ("MBP", "PLP1", "MOG")), ("microglial cell", ("CX3CR1", "P2RY12"))),
    "heart": (("cardiac muscle cell", ("TNNT2", "MYH7", "ACTC1")), _FIBRO, _ENDO, _MACRO),
}
OTHER_TISSUE = (("epithelial cell", ("EPCAM", "KRT8", "KRT18")), _FIBRO, _ENDO, _MACRO, _T)


@dataclass(frozen=True)
class SimulationResult:
    """Paths written by :func:`simulate`."""

    files: list[Path]
    ground_truth_path: Path


@dataclass(frozen=True)
class _Donor:
    index: int
    donor_id: str
    tissue: str
    disease: str
    batch: int
    sex: str
    age: int


def simulate(
    out_dir: str | os.PathLike,
    *,
    n_cells: int,
    n_donors: int,
    tissues: Sequence[str] = ("blood",),
    diseases: Sequence[str] = (),
    seed: int = 0,
    kg: str | os.PathLike | KnowledgeGraph = "human",
    cells_per_file: int | None = None,
    n_genes: int | None = None,
    disease_effect: float = DISEASE_EFFECT,
    module_size: int = MODULE_PROTEINS,
    affected_fraction: float = AFFECTED_FRACTION,
    disease_genes: str = "module",
    confound: bool = False,
    overwrite: bool = False,
) -> SimulationResult:
    """Write simulated ``.h5ad`` files of raw counts with CELLxGENE metadata, and the ground truth.

    Parameters
    ----------
    out_dir
        New directory to write (replaced only with ``overwrite``).
    n_cells, n_donors
        Totals; cells are shared evenly between donors. Needs one donor per tissue and condition.
    tissues, diseases
        Tissue names (``tissue`` and ``tissue_general``) and disease names; ``normal`` is always added.
    kg
        Pack name, pack directory or a loaded ``KnowledgeGraph``; its RNA nodes are the genes.
    cells_per_file
        Split the cell stream into files of this many cells; default one file per donor.
    n_genes
        Simulate only this many genes (disease, sex and marker genes always kept); default all.
    disease_effect
        Scale of the disease's log2 fold changes: each disease gene moves by +-effect x U(2/3, 4/3).
    module_size
        Proteins per disease module (capped at a quarter of the pack's proteins per disease).
    affected_fraction
        Share of each tissue's cell types that carry the disease shift (at least one).
    disease_genes
        ``"module"`` (a connected PPI module) or ``"random"`` (as many genes scattered over the graph with
        the module's expression distribution: a control in which the graph should not help).
    confound
        Give each dataset a single condition (disease fully confounded with batch); default balanced.

    Returns
    -------
    :class:`SimulationResult` with the file paths (in order) and ``ground_truth.json``.
    """
    from celltosg.kg import KnowledgeGraph

    graph = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph.load(kg)
    tissues, diseases = _unique(tissues), [d for d in _unique(diseases) if d != "normal"]
    conditions = ["normal", *diseases]
    if not tissues:
        raise CellTOSGError("simulate needs at least one tissue (for example --tissues blood).")
    if n_donors < len(tissues) * len(conditions):
        raise CellTOSGError(
            f"{n_donors} donors cannot cover {len(tissues)} tissues x {len(conditions)} conditions "
            f"({conditions}): every disease needs its own donors and normal controls in each tissue. "
            f"Ask for at least {len(tissues) * len(conditions)} donors."
        )
    if n_cells < n_donors:
        raise CellTOSGError(f"{n_cells} cells for {n_donors} donors: ask for at least one cell per donor.")
    _check_disease_options(disease_effect, module_size, affected_fraction, disease_genes)

    genes_rng = np.random.default_rng([seed, 0])
    modules = _disease_modules(graph, diseases, genes_rng, module_size=module_size, effect=disease_effect)
    cell_types = {t: CELL_TYPES.get(t.lower(), OTHER_TISSUE) for t in tissues}
    symbols, gene_ids = _gene_table(graph)
    keep = _choose_genes(symbols, modules, cell_types, n_genes, genes_rng)
    symbols, gene_ids = symbols[keep], gene_ids[keep]
    model = _ExpressionModel(symbols, tissues, cell_types, conditions, seed, genes_rng, affected_fraction)
    if disease_genes == "random":
        modules = _scatter_modules(modules, model, symbols, np.random.default_rng([seed, 7]))
    model.place_diseases(modules, symbols)

    plan_rng = np.random.default_rng([seed, 1])
    donors = _donors(n_donors, tissues, conditions, plan_rng, confound=confound)
    donor_of_cell, type_of_cell, library = _cell_plan(n_cells, donors, model, plan_rng)
    ranges = _file_ranges(donor_of_cell, cells_per_file)
    var = pd.DataFrame({"gene_ids": pd.Categorical(gene_ids)}, index=pd.Index(symbols, name=None))

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise CellTOSGError(f"{out} already exists; choose a new --out directory or pass --overwrite.")
    names: list[str] = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for index, (start, stop) in enumerate(progress(ranges, description="simulating")):
            cells = np.arange(start, stop)
            X = sp.vstack([  # bounded memory: at most _SAMPLE_CELLS cells drawn at once
                model.sample(donor_of_cell[part], type_of_cell[part], library[part], donors,
                             np.random.default_rng([seed, 2, index, k]))
                for k, part in enumerate(np.array_split(cells, math.ceil(len(cells) / _SAMPLE_CELLS)))
            ], format="csr")
            obs = _obs(cells, donor_of_cell, type_of_cell, donors, model)
            name = (f"{donors[donor_of_cell[start]].donor_id}.h5ad" if cells_per_file is None
                    else f"part_{index:05d}.h5ad")
            _write_h5ad(tmp / name, X, obs, var)
            names.append(name)
        truth = {disease: module["genes"] for disease, module in modules.items()}
        (tmp / "ground_truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
        record = {
            "seed": seed, "n_cells": n_cells, "n_donors": n_donors, "tissues": tissues, "diseases": diseases,
            "kg": graph.name, "kg_checksum": graph.checksum, "n_genes": len(symbols), "files": names,
            "cells_per_file": cells_per_file, "disease_effect": disease_effect, "module_size": module_size,
            "affected_fraction": affected_fraction, "disease_genes": disease_genes, "confound": confound,
            "cell_types": {t: [c for c, _ in types] for t, types in cell_types.items()},
            "disease_modules": {d: {**m, "affected_cell_types": model.affected[d]} for d, m in modules.items()},
            "donors": [vars(d) for d in donors],
        }
        (tmp / "simulation.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    logger.info("simulated %d cells of %d donors into %d files under %s", n_cells, n_donors, len(names), out)
    return SimulationResult(files=[out / n for n in names], ground_truth_path=out / "ground_truth.json")


class _ExpressionModel:
    """Gene-level parameters shared by all cells; profiles per (donor, cell type) on demand."""

    def __init__(self, symbols: np.ndarray, tissues: list[str], cell_types: dict, conditions: list[str],
                 seed: int, rng: np.random.Generator, affected_fraction: float = AFFECTED_FRACTION):
        n = len(symbols)
        self.n_genes = n
        self.seed = seed
        self.tissues = tissues
        self.cell_types = cell_types
        index = {s: i for i, s in enumerate(symbols)}
        self.base = rng.normal(0.0, 2.5, n) * LN2
        self.theta = 2.0 * np.exp(rng.normal(0.0, 0.5, n))
        self.programmes: dict[str, np.ndarray] = {}
        self.type_library: dict[str, np.ndarray] = {}
        self.type_share: dict[str, np.ndarray] = {}
        for tissue in tissues:
            programme = rng.normal(0.0, 0.3, (len(cell_types[tissue]), n))
            for j, (_, markers) in enumerate(cell_types[tissue]):
                chosen = rng.choice(n, max(1, round(0.03 * n)), replace=False)
                programme[j, chosen] += rng.uniform(1.5, 3.5, len(chosen))
                programme[j, [index[m] for m in markers if m in index]] += 4.0
            self.programmes[tissue] = programme * LN2
            self.type_library[tissue] = rng.uniform(0.7, 1.5, len(cell_types[tissue]))
            share = rng.uniform(0.5, 2.0, len(cell_types[tissue]))
            self.type_share[tissue] = share / share.sum()
        self.sex = {"female": [index[g] for g in FEMALE_GENES if g in index],
                    "male": [index[g] for g in MALE_GENES if g in index]}
        self.age_genes = rng.choice(n, max(1, round(0.01 * n)), replace=False)
        self.age_slope = rng.choice([-0.02, 0.02], len(self.age_genes)) * LN2
        self.disease_genes: dict[str, np.ndarray] = {}
        self.disease_shift: dict[str, np.ndarray] = {}
        self.affected: dict[str, dict[str, list[str]]] = {}
        for disease in conditions[1:]:
            self.affected[disease] = {}
            for tissue in tissues:
                names = [c for c, _ in cell_types[tissue]]
                count = min(len(names), max(1, math.ceil(affected_fraction * len(names) - 1e-9)))
                picked = rng.choice(len(names), count, replace=False)
                self.affected[disease][tissue] = [names[i] for i in sorted(picked)]
        self.nb_genes, self.poisson_genes = self._noise_genes()

    def mean_log_abundance(self) -> np.ndarray:
        """Per gene, the mean over the simulated cell types of its log abundance before donor effects, (n_genes,)."""
        return self.base + np.concatenate(list(self.programmes.values())).mean(axis=0)

    def place_diseases(self, modules: dict, symbols: np.ndarray) -> None:
        """Set each disease's genes and log fold changes (``modules[d]["genes"]``, ``["log2_fold_change"]``)."""
        index = {s: i for i, s in enumerate(symbols)}
        for disease, module in modules.items():
            self.disease_genes[disease] = np.array([index[g] for g in module["genes"]], dtype=np.int64)
            self.disease_shift[disease] = np.array([module["log2_fold_change"][g] for g in module["genes"]]) * LN2
        self.nb_genes, self.poisson_genes = self._noise_genes()

    def _noise_genes(self) -> tuple[np.ndarray, np.ndarray]:
        """Negative-binomial genes (expected count at the median library reaches NB_MIN_MEAN in some cell
        type, and always sex and disease genes) and the Poisson rest."""
        top = self.base + np.max([p.max(axis=0) for p in self.programmes.values()], axis=0)
        reach = np.exp(top - np.logaddexp.reduce(self.base)) * MEDIAN_LIBRARY
        forced = np.concatenate([self.sex["female"], self.sex["male"], *self.disease_genes.values()]).astype(np.int64)
        nb_genes = np.union1d(np.flatnonzero(reach >= NB_MIN_MEAN), forced)
        return nb_genes, np.setdiff1d(np.arange(self.n_genes), nb_genes)

    def batch_library(self, batch: int) -> float:
        """Library-size factor of one batch."""
        return float(np.exp(np.random.default_rng([self.seed, 5, batch]).normal(0.0, 0.2)))

    def profile(self, donor: _Donor, type_index: int) -> np.ndarray:
        """Expression shares of one donor's cell type, float64 (n_genes,) summing to 1."""
        log = self.base + self.programmes[donor.tissue][type_index]
        log += np.random.default_rng([self.seed, 4, donor.index]).normal(0.0, 0.15, self.n_genes) * LN2
        log += np.random.default_rng([self.seed, 6, donor.batch]).normal(0.0, 0.3, self.n_genes) * LN2
        log[self.sex[donor.sex]] += 5.0 * LN2
        log[self.age_genes] += self.age_slope * (donor.age - 50)
        if donor.disease != "normal":
            name = self.cell_types[donor.tissue][type_index][0]
            if name in self.affected[donor.disease][donor.tissue]:
                log[self.disease_genes[donor.disease]] += self.disease_shift[donor.disease]
        share = np.exp(log - log.max())
        return share / share.sum()

    def sample(self, donor_of_cell: np.ndarray, type_of_cell: np.ndarray, library: np.ndarray,
               donors: list[_Donor], rng: np.random.Generator) -> sp.csr_matrix:
        """Counts (n_cells, n_genes) float32 CSR for cells given by donor, type and library size."""
        n = len(donor_of_cell)
        pairs, profile_of_cell = np.unique(np.stack([donor_of_cell, type_of_cell], 1), axis=0, return_inverse=True)
        profile_of_cell = profile_of_cell.ravel()
        shares = np.stack([self.profile(donors[d], t) for d, t in pairs])  # (n_profiles, n_genes)
        nb, theta = self.nb_genes, self.theta[self.nb_genes].astype(np.float32)
        nb_shares = shares[:, nb]
        blocks = []
        for start in range(0, n, _CHUNK_CELLS):
            stop = min(start + _CHUNK_CELLS, n)
            mean = (library[start:stop, None] * nb_shares[profile_of_cell[start:stop]]).astype(np.float32)
            blocks.append(sp.csr_matrix(negative_binomial(mean, theta, rng).astype(np.float32)))
        scatter = sp.csr_matrix((np.ones(len(nb), dtype=np.float32), (np.arange(len(nb)), nb)),
                                shape=(len(nb), self.n_genes))
        X = sp.vstack(blocks, format="csr") @ scatter
        # Poisson genes: per gene a Poisson total over the profile's cells, each count given to a cell with
        # probability proportional to its library size (the same law as independent Poisson draws)
        low = self.poisson_genes
        rows, cols = [], []
        for p in range(len(pairs)):
            cells = np.flatnonzero(profile_of_cell == p)
            totals = rng.poisson(shares[p, low] * library[cells].sum())
            rows.append(cells[draw_alias(*alias_table(library[cells]), int(totals.sum()), rng)])
            cols.append(np.repeat(low, totals))
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        poisson = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, self.n_genes))
        poisson.sum_duplicates()
        X = (X + poisson).tocsr()
        X.sort_indices()
        return X


def negative_binomial(mean: np.ndarray, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NB counts with means ``mean`` (n, h) and dispersions ``theta`` (h,), as Poisson(mean x Gamma(theta, 1/theta))."""
    gamma = rng.standard_gamma(theta.astype(np.float32), size=mean.shape, dtype=np.float32)
    return rng.poisson(mean * gamma / theta)


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker / Vose alias table for drawing index i with probability weights[i] / sum (O(1) per draw)."""
    n = len(weights)
    prob = np.asarray(weights, dtype=np.float64) * n / np.sum(weights)
    alias = np.arange(n)
    small = [i for i in range(n) if prob[i] < 1.0]
    large = [i for i in range(n) if prob[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        prob[g] -= 1.0 - prob[s]
        (small if prob[g] < 1.0 else large).append(g)
    prob[small + large] = 1.0
    return prob, alias


def draw_alias(prob: np.ndarray, alias: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices drawn from an :func:`alias_table`."""
    pick = (rng.random(size) * len(prob)).astype(np.int64)
    return np.where(rng.random(size) < prob[pick], pick, alias[pick])


def _unique(values: Sequence[str]) -> list[str]:
    """Non-empty stripped names in first-seen order."""
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def _gene_table(graph) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-empty RNA symbols of the pack (first occurrence kept) and their Ensembl ids."""
    symbols = pd.Series(graph.rna_symbols).fillna("").astype(str)
    ensembl = graph.nodes["ensembl_gene"].iloc[: graph.n_rna].fillna("").astype(str).to_numpy()
    keep = (symbols != "").to_numpy() & ~symbols.duplicated().to_numpy()
    return symbols.to_numpy()[keep].astype(object), ensembl[keep].astype(object)


def _check_disease_options(effect: float, module_size: int, affected_fraction: float, placement: str) -> None:
    if not (math.isfinite(effect) and effect >= 0):
        raise CellTOSGError(f"disease_effect={effect}: give a log2 fold-change scale of 0 or more (e.g. 1.5).")
    if module_size < 1:
        raise CellTOSGError(f"module_size={module_size}: a disease module needs at least one protein.")
    if not 0 < affected_fraction <= 1:
        raise CellTOSGError(f"affected_fraction={affected_fraction}: give a share of cell types in (0, 1].")
    if placement not in PLACEMENTS:
        raise CellTOSGError(f"disease_genes={placement!r}: choose one of {', '.join(PLACEMENTS)}.")


def _disease_modules(graph, diseases: list[str], rng: np.random.Generator, *, module_size: int = MODULE_PROTEINS,
                     effect: float = DISEASE_EFFECT) -> dict[str, dict]:
    """Per disease a connected PPI module: seed protein, proteins, genes and log2 fold changes."""
    if not diseases:
        return {}
    edges = graph.edges
    ppi = edges[edges["kind"] == "ppi"]
    src, dst = ppi["source"].to_numpy(np.int64), ppi["target"].to_numpy(np.int64)
    n = graph.n_nodes
    adjacency = sp.csr_matrix((np.ones(2 * len(src)), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n))
    internal = edges[edges["kind"] == "internal"]
    genes_of: dict[int, list[int]] = {}
    for rna, protein in zip(internal["source"].to_numpy(), internal["target"].to_numpy(), strict=True):
        genes_of.setdefault(int(protein), []).append(int(rna))
    symbols = graph.nodes["symbol"].fillna("").astype(str).to_numpy()
    degree = np.diff(adjacency.indptr)
    candidates = [p for p in sorted(genes_of) if degree[p] >= 2]
    size = max(min(3, module_size), min(module_size, graph.n_protein // (4 * len(diseases))))
    used: set[int] = set()
    modules = {}
    for disease in diseases:
        available = [p for p in candidates if p not in used]
        if not available:
            raise CellTOSGError(
                f"the knowledge graph {graph.name!r} has too few connected proteins left for a module for "
                f"{disease!r}; simulate fewer diseases or use a larger pack."
            )
        module = [int(rng.choice(available))]
        seen = {module[0]}
        queue = list(module)
        while queue and len(module) < size:
            node = queue.pop(0)
            neighbours = adjacency.indices[adjacency.indptr[node]:adjacency.indptr[node + 1]]
            for nb in rng.permutation(np.unique(neighbours)):
                nb = int(nb)
                if nb in seen or nb in used or nb not in genes_of:
                    continue
                seen.add(nb)
                module.append(nb)
                queue.append(nb)
                if len(module) == size:
                    break
        used |= set(module)
        genes = list(dict.fromkeys(symbols[g] for p in module for g in genes_of[p] if symbols[g]))
        change = np.where(rng.random(len(genes)) < 0.8, 1.0, -1.0) * rng.uniform(2 / 3, 4 / 3, len(genes)) * effect
        modules[disease] = {
            "seed_protein": str(symbols[module[0]]),
            "proteins": [graph.nodes["node_id"].iloc[p] for p in module],
            "genes": genes,
            "log2_fold_change": {g: round(float(c), 4) for g, c in zip(genes, change, strict=True)},
        }
    return modules


def _scatter_modules(modules: dict, model: _ExpressionModel, symbols: np.ndarray,
                     rng: np.random.Generator) -> dict[str, dict]:
    """The modules with their genes swapped for genes scattered over the graph, matched in expression.

    Each module gene (in random order) is replaced by one of the :data:`_MATCH_POOL` unused genes closest
    to it in mean log abundance, drawn from genes outside every module and the sex genes; the replacement
    keeps the gene's log2 fold change. The module's genes are kept as ``module_genes``.
    """
    level = model.mean_log_abundance()
    taken = np.zeros(len(symbols), dtype=bool)
    taken[pd.Index(symbols).isin([g for m in modules.values() for g in m["genes"]])] = True
    taken[np.concatenate([model.sex["female"], model.sex["male"]]).astype(np.int64)] = True
    if (~taken).sum() < sum(len(m["genes"]) for m in modules.values()):
        raise CellTOSGError("too few genes outside the disease modules for random placement; simulate more genes.")
    index = {s: i for i, s in enumerate(symbols)}
    scattered = {}
    for disease, module in modules.items():
        replacement = {}
        for gene in rng.permutation(np.asarray(module["genes"], dtype=object)):
            free = np.flatnonzero(~taken)
            pool = free[np.argsort(np.abs(level[free] - level[index[gene]]), kind="stable")[:_MATCH_POOL]]
            pick = int(rng.choice(pool))
            taken[pick] = True
            replacement[gene] = str(symbols[pick])
        genes = [replacement[g] for g in module["genes"]]
        change = {replacement[g]: c for g, c in module["log2_fold_change"].items()}
        scattered[disease] = {**module, "genes": genes, "log2_fold_change": change, "module_genes": module["genes"]}
    return scattered


def _choose_genes(symbols: np.ndarray, modules: dict, cell_types: dict, n_genes: int | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the simulated genes: all, or ``n_genes`` keeping disease, sex and marker genes."""
    if n_genes is None or n_genes >= len(symbols):
        return np.arange(len(symbols))
    wanted = {g for m in modules.values() for g in m["genes"]} | set(FEMALE_GENES) | set(MALE_GENES)
    wanted |= {g for types in cell_types.values() for _, markers in types for g in markers}
    required = np.flatnonzero(pd.Index(symbols).isin(list(wanted)))
    if len(required) > n_genes:
        raise CellTOSGError(
            f"n_genes={n_genes} is below the {len(required)} disease, sex and marker genes; ask for more genes."
        )
    others = np.setdiff1d(np.arange(len(symbols)), required)
    return np.sort(np.concatenate([required, rng.choice(others, n_genes - len(required), replace=False)]))


def _donors(n_donors: int, tissues: list[str], conditions: list[str], rng: np.random.Generator, *,
            confound: bool = False) -> list[_Donor]:
    """Donors cycling through tissue x condition, in matched sets that share one dataset, sex and age.

    A matched set is one donor of each condition of one tissue (donors ``d`` with the same ``d // (T x C)``
    and tissue). A dataset holds whole cycles of T x C donors (at least :data:`DATASET_DONORS`); donors left
    over after the last full cycle join the last dataset, so every dataset holds cases and controls, and
    a donor split can keep every dataset's label balance in training. With ``confound``
    each dataset is split by condition instead: every dataset holds a single condition.
    """
    n_tissues, n_conditions = len(tissues), len(conditions)
    cycle = n_tissues * n_conditions
    cycles_per_batch = math.ceil(DATASET_DONORS / cycle)
    n_batches = max(1, (n_donors // cycle) // cycles_per_batch)
    n_sets = math.ceil(n_donors / cycle) * n_tissues
    sexes = np.array(["female", "male"])[rng.permutation(n_sets) % 2]
    ages = rng.integers(20, 90, n_sets)
    donors = []
    for d in range(n_donors):
        condition = (d // n_tissues) % n_conditions
        batch = min((d // cycle) // cycles_per_batch, n_batches - 1)
        matched = (d // cycle) * n_tissues + d % n_tissues
        donors.append(_Donor(index=d, donor_id=f"donor_{d:04d}", tissue=tissues[d % n_tissues],
                             disease=conditions[condition],
                             batch=batch * n_conditions + condition if confound else batch,
                             sex=str(sexes[matched]), age=int(ages[matched])))
    return donors


def _cell_plan(n_cells: int, donors: list[_Donor], model: _ExpressionModel, rng: np.random.Generator):
    """Per cell: donor index (int32), cell-type index (int16), library size (float64), donor-major order."""
    per_donor = np.full(len(donors), n_cells // len(donors))
    per_donor[: n_cells % len(donors)] += 1
    donor_of_cell = np.repeat(np.arange(len(donors), dtype=np.int32), per_donor)
    type_of_cell = np.empty(n_cells, dtype=np.int16)
    library = np.empty(n_cells)
    start = 0
    for donor, count in zip(donors, per_donor, strict=True):
        shares = rng.dirichlet(20.0 * model.type_share[donor.tissue])
        types = rng.choice(len(shares), count, p=shares)
        type_of_cell[start:start + count] = types
        library[start:start + count] = (MEDIAN_LIBRARY * np.exp(rng.normal(0.0, 0.35, count))
                                        * model.type_library[donor.tissue][types] * model.batch_library(donor.batch))
        start += count
    return donor_of_cell, type_of_cell, library


def _file_ranges(donor_of_cell: np.ndarray, cells_per_file: int | None) -> list[tuple[int, int]]:
    """(start, stop) cell ranges: one per donor, or consecutive chunks of ``cells_per_file``."""
    n = len(donor_of_cell)
    if cells_per_file is None:
        bounds = np.r_[0, np.flatnonzero(np.diff(donor_of_cell)) + 1, n]
    else:
        if cells_per_file < 1:
            raise CellTOSGError(f"cells_per_file must be at least 1, got {cells_per_file}.")
        bounds = np.r_[np.arange(0, n, cells_per_file), n]
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _obs(cells: np.ndarray, donor_of_cell: np.ndarray, type_of_cell: np.ndarray, donors: list[_Donor],
         model: _ExpressionModel) -> pd.DataFrame:
    """CELLxGENE-style obs for the given cells (global indices)."""
    table = pd.DataFrame([vars(d) for d in donors]).iloc[donor_of_cell[cells]].reset_index(drop=True)
    type_names = [model.cell_types[t][int(j)][0] for t, j in zip(table["tissue"], type_of_cell[cells], strict=True)]
    obs = pd.DataFrame({
        "donor_id": table["donor_id"],
        "dataset_id": "sim_dataset_" + table["batch"].astype(str),
        "tissue": table["tissue"],
        "tissue_general": table["tissue"],
        "disease": table["disease"],
        "sex": table["sex"],
        "development_stage": table["age"].astype(str) + "-year-old human stage",
        "assay": "10x 3' v3",
        "suspension_type": "cell",
        "cell_type": type_names,
    })
    obs.index = pd.Index([f"cell_{i:08d}" for i in cells])
    return obs.astype("category")


def _write_h5ad(path: Path, X: sp.csr_matrix, obs: pd.DataFrame, var: pd.DataFrame) -> None:
    import anndata as ad

    # gzip, not lzf: h5py's bundled liblzf leaves its hash table uninitialised (INIT_HTAB 0), so lzf output
    # depends on stale memory and the same seed would not always give the same bytes. Level 1 writes in
    # about 2.5x lzf's time, reads faster and halves the file.
    ad.AnnData(X, obs=obs, var=var).write_h5ad(path, compression="gzip", compression_opts=1)
