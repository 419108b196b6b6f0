"""The CellTOSG-FM model object users hold: load a cohort, pretrain, fine-tune, save, load, predict, embed,
explain, in the manner of scvi-tools.

It is built only on the public functions of :mod:`celltosg.train`, :mod:`celltosg.loader`,
:mod:`celltosg.explain` and :mod:`celltosg.evaluation`; the ``nn.Module`` is :class:`celltosg.model.CellTOSGFM`.
A saved model is a directory holding the checkpoint that ``celltosg finetune`` (``model.ckpt``) or
``celltosg pretrain`` writes, ``metrics.json`` when fine-tuned, and ``celltosg_model.json`` (JSON
metadata: format, checkpoint file name, task, where the cohort came from).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celltosg.errors import CheckpointError, MalformedInputError, QueryError, UnknownIdentifierError
from celltosg.io_utils import atomic_dir

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

METADATA_FILE = "celltosg_model.json"
CHECKPOINT_FILE = "model.ckpt"
METRICS_FILE = "metrics.json"
FORMAT = "celltosg-fm-model"
FORMAT_VERSION = 1
EMBEDDING_KEY = "X_celltosg"


def _recipe():
    """``celltosg.recipe.RECIPE`` looked up at call time, so that a replaced recipe reaches the model object."""
    from celltosg.recipe import RECIPE

    return RECIPE


def _model_config(settings: Mapping[str, Any]):
    """The recipe's FMConfig with ``settings`` (FMConfig field names) applied; unknown names are an error."""
    from celltosg.model import FMConfig

    known = {f.name for f in dataclasses.fields(FMConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UnknownIdentifierError(f"unknown model settings {unknown}; choose from {sorted(known)}")
    return _recipe().config(**settings)


def _given(value, default):
    """``value`` unless it is None, then ``default`` (the recipe's setting)."""
    return default if value is None else value


class CellTOSGFM:
    """CellTOSG-FM as an object: a cohort (when made with :meth:`from_store`) and a trained checkpoint.

    Make one with :meth:`from_store` (then :meth:`pretrain` and / or :meth:`train`) or :meth:`load`.
    Training writes its checkpoints to ``out_dir`` / ``out`` when given, else to a temporary directory
    that lives as long as the object; :meth:`save` copies the model to a directory of your choice.

    Attributes
    ----------
    task
        ``"cell_type"``, ``"disease"``, ``"sex"`` or ``"pretrain"``.
    config
        The :class:`celltosg.model.FMConfig` that :meth:`pretrain` and :meth:`train` use.
    cohort
        The loaded :class:`celltosg.loader.Cohort` (None for a loaded model).
    checkpoint
        Path of the checkpoint that :meth:`predict`, :meth:`embed` and :meth:`explain` apply (None until trained).
    metrics
        Test metrics of :meth:`train` (or of the loaded model), held-out edge metrics of :meth:`pretrain`.
    """

    def __init__(self, *, task: str, config=None, cohort=None, store: str | None = None,
                 where: Mapping[str, Any] | None = None, seed: int = 0, checkpoint: str | os.PathLike | None = None,
                 metrics: Mapping[str, Any] | None = None):
        self.task = task
        self.config = config
        self.cohort = cohort
        self.store = store
        self.where = dict(where or {})
        self.seed = int(seed)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.pretrained: Path | None = None
        self.metrics: dict[str, Any] = dict(metrics or {})
        self._workdir: tempfile.TemporaryDirectory | None = None

    def __repr__(self) -> str:
        cells = len(self.cohort.obs) if self.cohort is not None else None
        return (f"CellTOSGFM(task={self.task!r}, cells={cells}, store={self.store!r}, "
                f"checkpoint={str(self.checkpoint) if self.checkpoint else None!r})")

    # ---------------------------------------------------------------- making
    @classmethod
    def from_store(cls, store, *, task: str, where: Mapping[str, Any] | Sequence[str] | None = None,
                   split_by: str = "donor", seed: int = 0, cohort_options: Mapping[str, Any] | None = None,
                   **config) -> CellTOSGFM:
        """Load the cohort of ``task`` from a TOSG store and set up the model configuration.

        Parameters
        ----------
        store
            A :class:`~celltosg.store.TOSGStore` or its path.
        task
            ``"cell_type"``, ``"disease"``, ``"sex"`` (fine-tuning tasks) or ``"pretrain"`` (pretraining only).
        where
            Field -> value(s) selecting the cells (:func:`celltosg.loader.query`), or ``"FIELD=VALUE"`` strings.
        split_by
            ``"donor"`` (honest estimates) or ``"cell"`` (for a single-donor store).
        seed
            Seed of the split, initialisation, masks and batches.
        cohort_options
            Further keyword arguments of :func:`celltosg.loader.load_cohort` (``correction_method``, ...).
        **config
            :class:`celltosg.model.FMConfig` settings overriding the recipe's (:data:`celltosg.recipe.RECIPE`).
        """
        from celltosg.loader import TASKS, load_cohort, open_store, parse_where

        if task not in TASKS:
            raise QueryError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        conditions = parse_where(list(where)) if isinstance(where, Sequence) and not isinstance(where, str) \
            else dict(where or {})
        model_config = _model_config(config)
        opened = open_store(store)
        cohort = load_cohort(opened, conditions, task=task, split_by=split_by, seed=seed,
                             **dict(cohort_options or {}))
        return cls(task=task, config=model_config, cohort=cohort, store=str(Path(opened.root).resolve()),
                   where=conditions, seed=seed)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CellTOSGFM:
        """A model saved by :meth:`save`, a ``celltosg finetune`` output directory or a checkpoint file."""
        from celltosg.model import FMConfig
        from celltosg.train import load_checkpoint

        path = Path(path)
        meta: dict[str, Any] = {}
        if path.is_dir():
            meta_path = path / METADATA_FILE
            if meta_path.is_file():
                meta = _read_metadata(meta_path)
            checkpoint = path / meta.get("checkpoint", CHECKPOINT_FILE)
        else:
            checkpoint = path
        payload = load_checkpoint(checkpoint)
        try:
            config = FMConfig.from_dict(payload["config"])
        except (MalformedInputError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint {checkpoint} has a model configuration this celltosg cannot read "
                                  f"({error}); re-create it with this version") from error
        metrics = meta.get("metrics") or _plain_metrics(payload.get("metrics"))
        return cls(task=payload["task"], config=config, store=meta.get("store"),
                   where=meta.get("where"), seed=meta.get("seed", 0), checkpoint=checkpoint, metrics=metrics)

    # -------------------------------------------------------------- training
    def _require_cohort(self, action: str):
        if self.cohort is None:
            raise MalformedInputError(f"this model has no cohort to {action} on (it was loaded from a "
                                      "checkpoint); make one with CellTOSGFM.from_store(store, task=...)")
        return self.cohort

    def _scratch(self) -> Path:
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="celltosg-fm-")
        return Path(self._workdir.name)

    def pretrain(self, *, out: str | os.PathLike | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, mask_fraction: float | None = None,
                 **options):
        """Edge-masking pretraining of the encoder (:func:`celltosg.train.pretrain`) on the cohort's train cells.

        ``out`` is the checkpoint to write (default: the object's temporary directory); unset settings are the
        recipe's. :meth:`train` then starts from this encoder. Returns the
        :class:`~celltosg.train.PretrainResult` (held-out edge AUC / AP in ``metrics``).
        """
        from celltosg.train import pretrain

        recipe = _recipe()
        out = Path(out) if out is not None else self._scratch() / "pretrained.ckpt"
        result = pretrain(self._require_cohort("pretrain"), config=self.config,
                          epochs=_given(epochs, recipe.pretrain_epochs),
                          batch_size=_given(batch_size, recipe.pretrain_batch_size), lr=_given(lr, recipe.pretrain_lr),
                          mask_fraction=_given(mask_fraction, recipe.mask_fraction),
                          seed=self.seed, out=out, **options)
        self.pretrained = result.checkpoint
        if self.checkpoint is None or self.task == "pretrain":
            self.checkpoint = result.checkpoint
        self.metrics = {"pretrain": result.metrics, **{k: v for k, v in self.metrics.items() if k != "pretrain"}}
        return result

    def train(self, *, out_dir: str | os.PathLike | None = None, pretrained: str | os.PathLike | None = None,
              epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
              patience: int | None = None, **options):
        """Fine-tune on the task (:func:`celltosg.train.finetune`): selection on validation, metrics on test.

        Starts from ``pretrained`` (default: the encoder of :meth:`pretrain`, if it ran). ``out_dir`` receives
        ``model.ckpt``, ``metrics.json`` and ``last.ckpt`` (default: the object's temporary directory); unset
        settings are the recipe's; ``options`` go to :func:`~celltosg.train.finetune` (``freeze_encoder``,
        ``resume``, ``devices``, ``skip_init``, ...). Returns the :class:`~celltosg.train.FinetuneResult`.
        """
        from celltosg.train import finetune

        cohort = self._require_cohort("train")
        if self.task == "pretrain":
            raise QueryError("this model's cohort was loaded for pretraining; give task='cell_type', 'disease' or "
                             "'sex' to CellTOSGFM.from_store to fine-tune")
        recipe = _recipe()
        out_dir = Path(out_dir) if out_dir is not None else self._scratch() / "finetune"
        result = finetune(cohort, task=self.task, out_dir=out_dir, config=self.config,
                          pretrained=pretrained if pretrained is not None else self.pretrained,
                          epochs=_given(epochs, recipe.epochs),
                          batch_size=_given(batch_size, recipe.batch_size), lr=_given(lr, recipe.lr),
                          patience=_given(patience, recipe.patience), seed=self.seed, **options)
        self.checkpoint = result.checkpoint
        self.metrics = {**result.metrics, **({"pretrain": self.metrics["pretrain"]} if "pretrain" in self.metrics
                                             else {})}
        return result

    # ---------------------------------------------------------- save / load
    def _require_checkpoint(self, action: str) -> Path:
        if self.checkpoint is None:
            raise CheckpointError(f"this model is not trained yet; call .train() (or .pretrain()) before .{action}()")
        return self.checkpoint

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the model to the directory ``path`` (atomically): checkpoint, metrics and JSON metadata."""
        checkpoint = self._require_checkpoint("save")
        path = Path(path)
        if path.exists() and not overwrite:
            raise MalformedInputError(f"{path} already exists; choose another directory or pass overwrite=True")
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "checkpoint": CHECKPOINT_FILE,
                "task": self.task, "store": self.store, "where": self.where, "seed": self.seed,
                "metrics": self.metrics}
        with atomic_dir(path, overwrite=overwrite) as tmp:
            shutil.copyfile(checkpoint, tmp / CHECKPOINT_FILE)
            metrics = {k: v for k, v in self.metrics.items() if k != "pretrain"}
            if metrics:
                (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
            (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        return path

    # ------------------------------------------------------------ applying
    def predict(self, adata: ad.AnnData, *, batch_size: int = 64, gene_column: str | None = None,
                force: bool = False, copy: bool = False) -> ad.AnnData | None:
        """Predict the task's labels for the cells of ``adata`` (:func:`celltosg.train.predict`).

        Writes ``obs["celltosg_label"]``, ``obs["celltosg_probability"]`` (of that label),
        ``obsm["celltosg_probabilities"]`` (n_cells, C; columns ``uns["celltosg"]["classes"]``) and
        ``uns["celltosg"]`` (task, classes, gene-mapping report) into ``adata``, or into a copy that is
        returned when ``copy``. Genes are mapped by ``var_names`` or ``var[gene_column]``.
        """
        from celltosg.train import check_anndata, predict

        check_anndata(adata)
        checkpoint = self._require_checkpoint("predict")
        if self.task == "pretrain" or checkpoint == self.pretrained:
            raise MalformedInputError(f"checkpoint {checkpoint} has no task head (a pretrained encoder); fine-tune "
                                      "it with .train() (`celltosg finetune`) first, or use .embed()")
        result = predict(adata, checkpoint, batch_size=batch_size,
                         gene_column=gene_column, force=force)
        return _write_back(adata, result, obs=("celltosg_label", "celltosg_probability"),
                           obsm=("celltosg_probabilities",), copy=copy)

    def embed(self, adata: ad.AnnData, *, batch_size: int = 64, gene_column: str | None = None,
              force: bool = False, copy: bool = False) -> ad.AnnData | None:
        """Cell embeddings of the encoder (:func:`celltosg.train.embed`) into ``adata.obsm["X_celltosg"]``
        (n_cells, D), with the gene-mapping report in ``uns["celltosg"]``; into a returned copy when ``copy``."""
        from celltosg.train import check_anndata, embed

        check_anndata(adata)
        result = embed(adata, self._require_checkpoint("embed"), batch_size=batch_size, gene_column=gene_column,
                       force=force)
        return _write_back(adata, result, obs=(), obsm=(EMBEDDING_KEY,), copy=copy)

    def donor_calls(self, adata: ad.AnnData, donor_key: str) -> pd.DataFrame:
        """Per donor of ``adata.obs[donor_key]``: mean class probabilities (``p_<class>``), the called class
        (``called``) and ``n_cells``, from the output of :meth:`predict` (:func:`celltosg.evaluation.donor_calls`)."""
        from celltosg.evaluation import donor_calls
        from celltosg.train import check_anndata

        check_anndata(adata)
        if donor_key not in adata.obs:
            raise MalformedInputError(f"donor key {donor_key!r} is not an obs column of the input (columns: "
                                      f"{list(adata.obs.columns)[:20]}); name the column that holds donor ids")
        if "celltosg_probabilities" not in adata.obsm:
            raise MalformedInputError("the AnnData has no obsm['celltosg_probabilities']; run .predict(adata) first")
        return donor_calls(adata.obsm["celltosg_probabilities"], adata.obs[donor_key].astype(str).to_numpy(),
                           adata.uns["celltosg"]["classes"]).rename(columns={"donor": donor_key})

    def explain(self, class_label: str, *, out_dir: str | os.PathLike, store=None,
                where: Mapping[str, Any] | None = None, contrast: str | None = None, **options):
        """Explain one class as a signaling subgraph (:func:`celltosg.explain.explain_store`).

        The cells are those of ``store`` matching ``where`` (default: the store and conditions the model was
        trained on); ``contrast`` is the reference class (default: the other classes' mean logit). ``options``
        go to :func:`~celltosg.explain.explain_store` (``top_k``, ``method``, ``max_cells``, ...). Returns its
        :class:`~celltosg.explain.ExplainResult` and writes the figures and tables to ``out_dir``.
        """
        from celltosg.explain import explain_store

        store = store if store is not None else self.store
        if store is None:
            raise MalformedInputError("no store to read the cells to explain from; pass store=PATH")
        conditions = dict(where) if where is not None else self.where
        return explain_store(self._require_checkpoint("explain"), store, conditions, class_label=class_label,
                             out_dir=out_dir, contrast_label=contrast, **options)


def _write_back(adata, result, *, obs: tuple[str, ...], obsm: tuple[str, ...], copy: bool):
    """Copy the ``obs`` / ``obsm`` columns and ``uns["celltosg"]`` of ``result`` into ``adata`` (or a copy)."""
    target = adata.copy() if copy else adata
    for key in obs:
        target.obs[key] = result.obs[key].to_numpy()
    for key in obsm:
        target.obsm[key] = result.obsm[key]
    target.uns["celltosg"] = result.uns["celltosg"]
    return target if copy else None


def _plain_metrics(metrics) -> dict[str, Any]:
    """The checkpoint's metrics as JSON-ready values (tensors become lists)."""
    if metrics is None:
        return {}
    return json.loads(json.dumps(metrics, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} cannot be read ({error}); save the model again") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not celltosg model metadata; give a directory written by CellTOSGFM.save")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('format_version')}, this celltosg reads "
                              f"version {FORMAT_VERSION}; save the model again with this version")
    name = meta.get("checkpoint")
    if not isinstance(name, str) or Path(name).name != name:
        raise CheckpointError(f"{path} names checkpoint {name!r}, which is not a file name inside the directory")
    return meta
