"""``build_store``: h5ad files -> QC -> meta-cells -> gene mapping -> TOSG store, resumable, on Dask.

Each input file is one task (:func:`build_input`): it reads the file, runs QC and meta-cells, maps genes
and writes its own shards atomically, returning only a small record. The driver alone writes the
manifest, once per finished input, so an interrupted build rerun with the same command skips finished
inputs and redoes the rest (a half-written shard is never visible: shards are renamed into place).
The final obs table orders inputs by path, so serial and distributed builds give identical stores.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from celltosg.errors import CellTOSGError, MalformedInputError, StoreError
from celltosg.io_utils import read_h5ad
from celltosg.progress import progress
from celltosg.store import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    TOSGStore,
    discard_unstarted,
    finalize_store,
    input_finished,
    kg_reference,
    load_progress,
    new_manifest,
    prepare_obs,
    remove_unlisted_shards,
    safe_name,
    save_progress,
    store_lock,
    var_frame,
    write_shards,
)

logger = logging.getLogger(__name__)

DEFAULT_METACELL_SIZE = 50
_GENE_POSITION = "_celltosg_gene_position"
SCHEDULER_TIMEOUT_S = 20


@dataclass(frozen=True)
class BuildOptions:
    """Every option that shapes a build's output (recorded in the manifest under ``build``)."""

    layer: str | None = None
    use_raw: bool = False
    lognorm: bool = False
    obs_map: dict | None = None
    min_genes: int = 200
    min_cells: int = 3
    max_mito_fraction: float = 0.2
    metacell_method: str = "fast"
    metacell_size: int = DEFAULT_METACELL_SIZE
    seed: int = 0
    shard_size: int = DEFAULT_SHARD_ROWS
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    gene_column: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def input_key(path: Path) -> str:
    """Identity of an input file: hash of its absolute path, size and modification time."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_counts(path: Path, options: BuildOptions):
    """Read one h5ad file into an AnnData whose X holds counts (cells x genes).

    Counts come from ``options.layer``, ``.raw`` (``use_raw``) or X; log-normalised values are turned back
    into counts with :func:`counts_from_lognorm` when ``lognorm`` is set.
    """
    import anndata as ad

    from celltosg.build._counts import counts_from_lognorm

    where = str(path)
    adata = read_h5ad(path)
    if options.layer is not None:
        if options.layer not in adata.layers:
            raise MalformedInputError(f"{where}: has no layer {options.layer!r}; its layers are "
                                      f"{sorted(adata.layers)}. Pick one with --layer or drop the option")
        adata = ad.AnnData(X=adata.layers[options.layer], obs=adata.obs, var=adata.var)
    elif options.use_raw:
        if adata.raw is None:
            raise MalformedInputError(f"{where}: has no .raw; drop --use-raw or name a layer with --layer")
        adata = ad.AnnData(X=adata.raw.X, obs=adata.obs, var=adata.raw.var)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise MalformedInputError(f"{where}: holds {adata.n_obs} cells x {adata.n_vars} genes; nothing to build")
    if not adata.obs_names.is_unique:
        adata.obs_names_make_unique()
    if options.lognorm:
        adata = counts_from_lognorm(adata, where=where)
    return adata


# Packs loaded in this process, by (reference, checksum); the driver puts its own in for serial builds.
_KG_CACHE: dict[tuple[str, str], object] = {}


def _load_kg(reference: str, checksum: str):
    from celltosg.kg import KnowledgeGraph

    if (reference, checksum) not in _KG_CACHE:
        kg = KnowledgeGraph.load(reference)
        if kg.checksum != checksum:
            raise StoreError(f"pack {reference} has checksum {kg.checksum}, the build expects {checksum}; "
                             "every worker must see the same pack")
        _KG_CACHE[(reference, checksum)] = kg
    return _KG_CACHE[(reference, checksum)]


def build_input(path: str, out: str, kg_ref: str, kg_checksum: str, options: dict, *,
                force_mapping: bool = False) -> dict:
    """Process one input file and write its shards into store ``out`` (one Dask task).

    Returns the input's manifest record: status, path, size, mtime_ns, shards (entries), n_cells_in,
    n_metacells, qc (the QC report) and mapping (the gene-mapping report).
    """
    from celltosg.build._counts import value_type
    from celltosg.build._mapping import PackGeneMap, map_adata_genes
    from celltosg.build._metacells import make_metacells
    from celltosg.build._metadata import UNKNOWN, normalize_metadata
    from celltosg.build._qc import run_qc

    opts = BuildOptions(**options)
    file = Path(path)
    where, stem = str(file), safe_name(file.stem)
    stat = file.stat()
    kg = _load_kg(kg_ref, kg_checksum)
    adata = read_counts(file, opts)
    values = value_type(adata.X, lognorm=opts.lognorm, where=where)
    obs = normalize_metadata(adata.obs, opts.obs_map)
    obs.loc[obs["dataset_id"] == UNKNOWN, "dataset_id"] = stem  # a file without dataset ids is one dataset
    adata.obs = obs
    gene_map = map_adata_genes(adata, kg, force=force_mapping, gene_column=opts.gene_column, where=where)
    mapping = gene_map.report()
    adata.var[_GENE_POSITION] = np.arange(adata.n_vars)  # follows the genes through QC and meta-cells
    # copy=False: QC compacts the kept counts inside the input's buffers (this input is not used again)
    adata, qc = run_qc(adata, min_genes=opts.min_genes, min_cells=opts.min_cells,
                       max_mito_fraction=opts.max_mito_fraction, where=where, copy=False)
    record = {"status": "done", "path": str(file.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "n_cells_in": qc.n_cells_in, "qc": qc.as_dict(), "mapping": mapping, "shards": [],
              "n_metacells": 0, "value_type": values}
    if adata.n_obs == 0:
        logger.warning("%s: no cell passed QC; the input adds nothing to the store", where)
        return record
    metacells = make_metacells(adata, method=opts.metacell_method, size=opts.metacell_size, seed=opts.seed)
    del adata  # the cells' counts are not needed past this point: free them before the shards are written
    kept = metacells.var[_GENE_POSITION].to_numpy()
    X = PackGeneMap(rna_index=gene_map.rna_index[kept], n_rna=kg.n_rna).apply(metacells.X)
    cell_obs = metacells.obs.copy()
    cell_obs.insert(0, "cell_id", [f"{stem}:{name}" for name in metacells.obs_names])
    cell_obs = prepare_obs(cell_obs, where=where)
    record["shards"] = write_shards(out, stem, X, cell_obs, var_frame(kg), shard_rows=opts.shard_size,
                                    chunk_rows=opts.chunk_rows)
    record["n_metacells"] = int(X.shape[0])
    logger.info("%s: %d cells -> %d meta-cells in %d shard(s)", where, qc.n_cells_out, X.shape[0],
                len(record["shards"]))
    return record


def _open_or_create(out: Path, kg, options: BuildOptions) -> tuple[dict, bool]:
    """The manifest of a store under construction (resumed when compatible, else a fresh one) and whether
    the build extends a complete store."""
    manifest, extending = load_progress(out)
    if manifest is not None:
        if manifest["kg_checksum"] != kg.checksum:
            raise StoreError(f"store {out} was built with pack checksum {manifest['kg_checksum']}, this build "
                             f"uses {kg.checksum}; use the same pack or a new --out")
        previous = manifest.get("build", {})
        changed = {k: (previous.get(k), v) for k, v in options.as_dict().items() if previous.get(k) != v}
        if changed:
            details = ", ".join(f"{k}: store {old!r} vs now {new!r}" for k, (old, new) in changed.items())
            raise StoreError(f"store {out} was built with other options ({details}); rerun with the store's "
                             "options to resume or add inputs, or build into a new --out")
        return manifest, extending
    manifest = new_manifest(kg, chunk_rows=options.chunk_rows)
    manifest["build"] = options.as_dict()
    return manifest, False


def _check_inputs(paths: list[Path], manifest: dict) -> None:
    for path in paths:
        if not path.is_file():
            raise MalformedInputError(f"input {path} does not exist; check the path")
        if path.suffix != ".h5ad":
            raise MalformedInputError(f"input {path} is not an .h5ad file; convert it with anndata first")
    stems: dict[str, str] = {}
    recorded = [Path(r["path"]) for r in manifest["inputs"].values()]
    for path in [p.resolve() for p in paths] + recorded:
        other = stems.setdefault(safe_name(path.stem), str(path))
        if other != str(path):
            raise MalformedInputError(f"inputs {other} and {path} share the file name {path.stem!r}, which "
                                      "names their shards and cell ids; rename one of them")


def _drop_stale(manifest: dict, keys: dict[Path, str]) -> None:
    """Forget records of inputs whose file changed since they were built (their shards are rewritten)."""
    current = {str(p.resolve()): key for p, key in keys.items()}
    for key, record in list(manifest["inputs"].items()):
        if record["path"] in current and current[record["path"]] != key:
            logger.info("%s changed since it was built; rebuilding it", record["path"])
            del manifest["inputs"][key]


def _run_tasks(todo: list[Path], out: Path, kg, options: BuildOptions, manifest: dict, keys: dict[Path, str],
               *, workers: int, scheduler: str | None, force_mapping: bool, extending: bool) -> None:
    """Run :func:`build_input` for every pending input, recording each one as it finishes."""
    args = (str(out), kg_reference(kg), kg.checksum, options.as_dict())

    def record(path: Path, result: dict) -> None:
        manifest["inputs"][keys[path]] = result
        save_progress(out, manifest, extending=extending)

    if scheduler is None and workers <= 1:
        _KG_CACHE[(kg_reference(kg), kg.checksum)] = kg
        for path in progress(todo, description="building inputs"):
            record(path, build_input(str(path), *args, force_mapping=force_mapping))
        return
    from dask.distributed import Client, LocalCluster, as_completed

    if scheduler is not None:
        try:
            client, cluster = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s"), None
        except (OSError, TimeoutError) as error:
            raise CellTOSGError(f"cannot reach the Dask scheduler at {scheduler} ({error}); start one with "
                                "`dask scheduler` and `dask worker ADDRESS`, or drop --scheduler") from error
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = {client.submit(build_input, str(path), *args, force_mapping=force_mapping,
                                 key=f"build-{keys[path]}", pure=False): path for path in todo}
        for future in progress(as_completed(futures), description="building inputs", total=len(futures)):
            if future.status == "error":
                for pending in futures:
                    pending.cancel()
                future.result()  # re-raises the task's error
            record(futures[future], future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _check_cells(manifest: dict, built: list[dict], *, extending: bool) -> None:
    """Refuse a build that leaves the store without cells, or an extension whose new inputs add none."""
    empty = not any(r["n_metacells"] for r in manifest["inputs"].values())
    if empty or (extending and built and not any(r["n_metacells"] for r in built)):
        shown = manifest["inputs"].values() if empty else built
        cells = ", ".join(f"{Path(r['path']).name} {r['qc']['n_cells_out']}/{r['n_cells_in']}" for r in shown)
        raise MalformedInputError(
            f"no meta-cell came out of the input(s) (cells passing QC: {cells}); nothing was written. "
            "Lower --min-genes / --min-cells, raise --max-mito-fraction, or check that the inputs hold counts")


def build_store(inputs, out, *, kg="human", layer: str | None = None, use_raw: bool = False,
                lognorm: bool = False, obs_map: dict | None = None, min_genes: int = 200, min_cells: int = 3,
                max_mito_fraction: float = 0.2, metacell_method: str = "fast",
                metacell_size: int = DEFAULT_METACELL_SIZE, workers: int = 1, scheduler: str | None = None,
                force_mapping: bool = False, seed: int = 0, shard_size: int = DEFAULT_SHARD_ROWS,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, gene_column: str | None = None,
                lock_timeout: float = 0):
    """Build (or resume, or extend) a TOSG store from h5ad files.

    Parameters
    ----------
    inputs
        Paths of ``.h5ad`` files (cells x genes counts, CELLxGENE metadata columns).
    out
        Store directory. An unfinished store built with the same options is resumed: finished inputs
        are skipped; a finished store gains the new inputs.
    kg
        Pack name, pack directory or :class:`KnowledgeGraph`; the store's columns are its RNA nodes.
    layer, use_raw, lognorm
        Where the counts are (a layer, ``.raw``, else X) and whether they are log-normalised.
    obs_map
        ``{input column: CELLxGENE column}`` renames.
    min_genes, min_cells, max_mito_fraction
        QC thresholds.
    metacell_method, metacell_size
        ``fast`` or ``seacells``; cells per meta-cell (1 keeps single cells).
    workers, scheduler
        ``workers > 1`` runs inputs on a local Dask cluster of processes; ``scheduler`` is the address of
        an existing cluster (inputs and store must be on a file system its workers share).
    force_mapping
        Build inputs that measure too few of the pack's RNA nodes (:func:`celltosg.build.required_nodes`).
    gene_column
        var column of gene symbols, tried after the Ensembl ids (default: the first of feature_name,
        gene_short_name, gene_symbols, gene_symbol, symbol, gene_name that exists).
    seed
        Seed of every random step.
    lock_timeout
        Seconds to wait for another writer of ``out`` to finish (0: fail at once, naming it).

    Returns
    -------
    TOSGStore
    """
    from celltosg.kg import KnowledgeGraph

    if workers < 1:
        raise MalformedInputError(f"--workers must be at least 1, got {workers}; use --workers 1 for a serial "
                                  "build or N > 1 for N worker processes")
    kg = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph.load(kg)
    out = Path(out)
    options = BuildOptions(layer=layer, use_raw=use_raw, lognorm=lognorm, obs_map=dict(obs_map) if obs_map else None,
                           min_genes=min_genes, min_cells=min_cells, max_mito_fraction=max_mito_fraction,
                           metacell_method=metacell_method, metacell_size=metacell_size, seed=seed,
                           shard_size=shard_size, chunk_rows=chunk_rows, gene_column=gene_column)
    paths = list(dict.fromkeys(Path(p) for p in inputs))
    if not paths:
        raise MalformedInputError("no input files given; pass one or more .h5ad files")
    # a file or a foreign directory is refused before the lock file is made
    fresh, created = load_progress(out)[0] is None, not out.exists()
    with store_lock(out, timeout=lock_timeout):
        try:
            _build_locked(paths, out, kg, options, workers=workers, scheduler=scheduler,
                          force_mapping=force_mapping)
        except BaseException:
            discard_unstarted(out, fresh=fresh, created=created)
            raise
    return TOSGStore.open(out, kg=kg)


def _build_locked(paths: list[Path], out: Path, kg, options: BuildOptions, *, workers: int,
                  scheduler: str | None, force_mapping: bool) -> None:
    """The body of :func:`build_store`, run while holding the store's writer lock."""
    manifest, extending = _open_or_create(out, kg, options)
    _check_inputs(paths, manifest)
    keys = {p: input_key(p) for p in paths}
    _drop_stale(manifest, keys)
    save_progress(out, manifest, extending=extending)
    todo = [p for p in paths if not input_finished(out, manifest["inputs"].get(keys[p]))]
    skipped = len(paths) - len(todo)
    if skipped:
        logger.info("resuming %s: %d input(s) already built, %d to go", out, skipped, len(todo))
    _run_tasks(todo, out, kg, options, manifest, keys, workers=workers, scheduler=scheduler,
               force_mapping=force_mapping, extending=extending)
    _check_cells(manifest, [manifest["inputs"][keys[p]] for p in todo], extending=extending)
    remove_unlisted_shards(out, manifest)
    records = sorted(manifest["inputs"].values(), key=lambda r: r["path"])
    manifest["shards"] = [entry for r in records for entry in r["shards"]]
    finalize_store(out, kg, manifest)
