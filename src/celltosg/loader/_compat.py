"""``CellTOSGDataLoader``: the reference loader's constructor and attributes, backed by a TOSG store."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celltosg.errors import QueryError
from celltosg.io_utils import atomic_file
from celltosg.loader._balance import LABEL_COLUMNS, check_task
from celltosg.loader._fields import resolve_field
from celltosg.loader._load import load_cohort, open_store
from celltosg.loader._sampling import check_sampling

logger = logging.getLogger(__name__)

EXTRACT_MODES = ("train", "inference")


class CellTOSGDataLoader:
    """Drop-in replacement for the reference's ``CellTOSGDataLoader`` (OmniCellTOSG), reading a TOSG store.

    Parameters are the reference's; ``root`` is a store directory. ``dataset_correction`` is accepted as
    the reference's older name of ``correction_method``.

    Attributes
    ----------
    data
        train mode: {"train", "val", "test"} -> float32 (n, n_genes), 1e4-normalised log1p (batch-corrected
        per split when asked). Inference mode: raw gene-level counts, float32 (n, n_genes).
    labels
        train mode with ``label_column``: split -> int64 (n,); otherwise the metadata.
    metadata
        train mode: split -> DataFrame (with "split"); inference: one DataFrame.
    label_mapping
        label -> class (train mode with ``label_column``), else None.
    edge_index, internal_edge_index, ppi_edge_index
        int64 (2, E) over the cohort graph (RNA nodes = data columns, then proteins); edge_index holds
        every kind (internal, PPI both ways, ligand -> receptor).
    s_name, s_desc, s_bio / x_name_emb, x_desc_emb, x_bio_emb
        Node names, texts and sequences, or their embeddings (computed on first access, cached per node).
    cohort
        The underlying :class:`~celltosg.loader.Cohort`.

    Notes
    -----
    Differences from the reference, on purpose: a validation split is added (keys train / test kept);
    donors are shuffled with the seed rather than the smallest sent to test; cell types are numbered from
    0 (the reference starts at 1 and leaves 0 unused); data columns are genes, not transcripts.
    """

    def __init__(self, root, conditions: dict, shuffle: bool = False, stratified_balancing: bool = False,
                 task: str | None = None, label_column: str | None = None, sample_ratio: float | None = None,
                 sample_size: int | None = None, train_text: bool = False, train_bio: bool = False,
                 extract_mode: str | None = None, random_state: int = 2025, correction_method: str | None = None,
                 output_dir: str | None = None, dataset_correction: str | None = None, **options: Any):
        if sample_ratio is not None and sample_size is not None:
            check_sampling(sample_ratio, sample_size)
        mode = extract_mode or "inference"
        if mode not in EXTRACT_MODES:
            raise QueryError(f"extract_mode={extract_mode!r}; choose 'train' or 'inference'.")
        self.root, self.conditions, self.task = root, conditions, check_task(task)
        self.extract_mode, self.shuffle, self.stratified_balancing = mode, shuffle, stratified_balancing
        self.label_column, self.sample_ratio, self.sample_size = label_column, sample_ratio, sample_size
        self.train_text, self.train_bio, self.random_state = train_text, train_bio, random_state
        self.correction_method = correction_method or dataset_correction
        self.output_dir = output_dir
        store = open_store(root)
        column = resolve_field(label_column, store.obs.columns) if label_column else None
        self.cohort = load_cohort(
            store, conditions, task=self.task, label_column=column or LABEL_COLUMNS[self.task],
            sample_ratio=sample_ratio, sample_size=sample_size, split_by="donor" if mode == "train" else None,
            balance=stratified_balancing, seed=random_state, shuffle=shuffle,
            normalize=mode == "train", correction_method=self.correction_method, **options)
        self.label_mapping = None
        if mode == "train":
            splits = self.cohort.splits
            self.data = {s: self.cohort.X(s) for s in splits}
            self.metadata = {s: self._metadata(s) for s in splits}
            if column:
                self.labels = {s: self.cohort.labels(s) for s in splits}
                self.label_mapping = dict(self.cohort.label_mapping)
            else:
                self.labels = self.metadata
        else:
            self.data = self.cohort.X(None)
            self.metadata = self._metadata(None)
            self.labels = self.metadata
        kg = self.cohort.kg
        internal = kg.edge_index("internal").numpy()
        ppi = kg.edge_index("ppi").numpy()
        ligand = kg.edge_index("ligand_receptor").numpy()
        self.internal_edge_index, self.ppi_edge_index = internal, ppi
        self.edge_index = np.concatenate([internal, ppi, ligand], axis=1)
        if output_dir:
            self._write_outputs(Path(output_dir))

    def _metadata(self, split: str | None) -> pd.DataFrame:
        rows = self.cohort.obs if split is None else self.cohort.obs[self.cohort.obs["split"] == split]
        return rows.reset_index(drop=True)

    # ------------------------------------------------------------ node text and sequences
    @cached_property
    def s_name(self) -> pd.DataFrame:
        """Node names, column ``Name`` (one row per cohort graph node)."""
        return pd.DataFrame({"Name": self.cohort.kg.nodes["symbol"].astype(str).to_numpy()})

    @cached_property
    def s_desc(self) -> pd.DataFrame:
        """Node texts, column ``Description``."""
        return pd.DataFrame({"Description": self.cohort.kg.nodes["text"].fillna("").astype(str).to_numpy()})

    @cached_property
    def s_bio(self) -> pd.DataFrame:
        """Node types (``Transcript`` / ``Protein``) and protein sequences (empty for RNA nodes)."""
        kg = self.cohort.kg
        sequence = np.full(kg.n_nodes, "", dtype=object)
        sequence[kg.sequences["node_index"].to_numpy()] = kg.sequences["sequence"].to_numpy()
        kind = np.where(kg.nodes["type"].to_numpy() == "rna", "Transcript", "Protein")
        return pd.DataFrame({"Type": kind, "Sequence": sequence})

    @cached_property
    def x_name_emb(self) -> np.ndarray:
        """Embeddings of node names, float32 (n_nodes, 384)."""
        from celltosg.encode import encode_texts

        nodes = self.cohort.kg.nodes
        names = (nodes["symbol"].astype(str) + ": " + nodes["full_name"].fillna("").astype(str)).tolist()
        return encode_texts(names)

    @cached_property
    def x_desc_emb(self) -> np.ndarray:
        """Embeddings of node texts, float32 (n_nodes, 384)."""
        return self.cohort.text_embeddings()

    @cached_property
    def x_bio_emb(self) -> np.ndarray:
        """Protein sequence features, float32 (n_nodes, 32); zero for nodes without a sequence."""
        return self.cohort.sequence_features()[0]

    # ------------------------------------------------------------ files
    def _write_outputs(self, out: Path) -> None:
        """Write the reference's files: label mapping, full labels, per-split label arrays (train mode),
        or the metadata table (inference)."""
        out.mkdir(parents=True, exist_ok=True)
        if self.extract_mode != "train":
            with atomic_file(out / "labels.csv") as tmp:
                self.metadata.to_csv(tmp, index=False)
            return
        name = self.label_column or "metadata"
        if self.label_mapping is not None:
            mapping = pd.DataFrame({"label_name": list(self.label_mapping), "label_index": list(
                self.label_mapping.values())})
            with atomic_file(out / f"label_mapping_{name}.csv") as tmp:
                mapping.to_csv(tmp, index=False)
        frames = []
        for split, meta in self.metadata.items():
            frame = meta.copy()
            if self.label_mapping is not None:
                frame["label_index"] = self.labels[split]
                (out / split).mkdir(exist_ok=True)
                with atomic_file(out / split / f"labels_{split}.npy") as tmp:
                    with open(tmp, "wb") as handle:
                        np.save(handle, self.labels[split])
            frames.append(frame)
        with atomic_file(out / f"labels_full_{name}.csv") as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
        reports = self.cohort.correction_reports
        if reports:
            lines = [f"{split}: {line}" for split, report in reports.items() for line in report.lines()]
            with atomic_file(out / "correction_report.txt") as tmp:
                tmp.write_text("\n".join(lines) + "\n")
