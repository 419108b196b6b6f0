"""`celltosg build` (h5ad files -> TOSG store) and `celltosg import-omnicelltosg` (the authors' release)."""

from __future__ import annotations

from pathlib import Path

import typer

from celltosg.cli import app
from celltosg.errors import MalformedInputError

_PACK_HELP = "Knowledge-graph pack: 'human' (embedded) or a pack directory."
_LOCK_HELP = "Seconds to wait for another run writing the same --out (default 0: fail at once)."


def _parse_obs_map(entries: list[str] | None) -> dict[str, str] | None:
    mapping = {}
    for entry in entries or []:
        old, sep, new = entry.partition("=")
        if not sep or not old or not new:
            raise MalformedInputError(f"--obs-map {entry!r} must look like INPUT_COLUMN=CELLXGENE_COLUMN, "
                                      "for example --obs-map celltype=cell_type")
        mapping[old] = new
    return mapping or None


def _summary(store) -> None:
    info = store.info()
    for record in sorted(store.manifest["inputs"].values(), key=lambda r: r["path"]):
        qc, mapping = record["qc"], record["mapping"]
        typer.echo(f"{record['path']}: {qc['n_cells_out']}/{qc['n_cells_in']} cells pass QC, "
                   f"{record['n_metacells']} meta-cells, genes mapped {100 * mapping['rate']:.1f}% "
                   f"({mapping['n_mapped']}/{mapping['n_genes']}), {mapping['n_nodes']} RNA nodes measured")
    typer.echo(f"store {store.root}: {info['n_cells']} meta-cells from {info['n_raw_cells']} cells x "
               f"{info['n_nodes']} RNA nodes, {info['n_shards']} shards, {info['expression_bytes']} bytes "
               f"({info['bytes_per_value']:.3f} per value)")


@app.command("build")
def build(
    inputs: list[Path] = typer.Argument(..., help="Input .h5ad files (cells x genes counts)."),
    out: Path = typer.Option(..., "--out", help="Store directory; rerunning the same command resumes it."),
    pack: str = typer.Option("human", "--pack", "--kg", help=_PACK_HELP),
    layer: str = typer.Option(None, "--layer", help="Read counts from this layer instead of X."),
    use_raw: bool = typer.Option(False, "--use-raw", help="Read counts (and genes) from .raw."),
    lognorm: bool = typer.Option(False, "--lognorm",
                                 help="Input is log1p(normalize_total); turn it back into counts."),
    obs_map: list[str] = typer.Option(None, "--obs-map",
                                      help="Rename a metadata column, INPUT=CELLXGENE (repeatable)."),
    min_genes: int = typer.Option(200, "--min-genes", help="QC: drop cells with fewer detected genes."),
    min_cells: int = typer.Option(3, "--min-cells", help="QC: drop genes detected in fewer cells."),
    max_mito: float = typer.Option(0.2, "--max-mito-fraction",
                                   help="QC: drop cells with a larger share of mitochondrial counts."),
    metacell_method: str = typer.Option("fast", "--metacell-method", help="Meta-cells: 'fast' or 'seacells'."),
    metacell_size: int = typer.Option(50, "--metacell-size", help="Cells per meta-cell (1 keeps single cells)."),
    workers: int = typer.Option(1, "--workers", help="Run inputs on a local Dask cluster of N processes."),
    scheduler: str = typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler."),
    force: bool = typer.Option(False, "--force", help="Build inputs that measure under 25% of the pack's RNA "
                               "nodes (or under 5,000 on a pack of 10,000+), such as gene panels."),
    gene_column: str = typer.Option(None, "--gene-column",
                                    help="var column of gene symbols, used after Ensembl ids for the genes "
                                         "still unmapped (default: feature_name, gene_short_name, "
                                         "gene_symbols, symbol, ... whichever exists)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random step."),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Meta-cells per shard at most."),
    lock_timeout: float = typer.Option(0.0, "--lock-timeout", help=_LOCK_HELP),
) -> None:
    """QC, meta-cells and gene mapping of h5ad files into a sharded TOSG store.

    Values: raw counts (X, --layer or --use-raw) are summed per meta-cell. log1p(normalize_total) values:
    pass --lognorm and they are turned back into integer counts. TPM, FPKM and other non-integer values
    (log values without --lognorm too): no flag turns them into counts; they are summed per meta-cell as
    given, with a warning, and `celltosg store info --json` reports value_type "non_integer".

    Genes: Ensembl ids first (any id of a gene the pack knows, version stripped), then symbols or aliases
    from --gene-column or feature_name / gene_short_name / gene_symbols / symbol. An input that measures
    under 25% of the pack's RNA nodes (5,462 of the human pack's 21,846) is refused unless --force.
    """
    from celltosg.build import build_store

    store = build_store(inputs, out, kg=pack, layer=layer, use_raw=use_raw, lognorm=lognorm,
                        obs_map=_parse_obs_map(obs_map), min_genes=min_genes, min_cells=min_cells,
                        max_mito_fraction=max_mito, metacell_method=metacell_method,
                        metacell_size=metacell_size, workers=workers, scheduler=scheduler,
                        force_mapping=force, seed=seed, shard_size=shard_size, gene_column=gene_column,
                        lock_timeout=lock_timeout)
    _summary(store)


@app.command("import-omnicelltosg")
def import_omnicelltosg(
    root: Path = typer.Argument(..., help="Root of the OmniCellTOSG release (expression_matrix/, ...)."),
    out: Path = typer.Option(..., "--out", help="Store directory to write."),
    pack: str = typer.Option("human", "--pack", "--kg", help=_PACK_HELP),
    force: bool = typer.Option(False, "--force", help="Import even when under 25% of the pack's RNA nodes are measured."),
    lock_timeout: float = typer.Option(0.0, "--lock-timeout", help=_LOCK_HELP),
) -> None:
    """Read the authors' released dataset into a TOSG store, collapsing transcript columns to genes."""
    from celltosg.build import import_omnicelltosg as run_import

    store = run_import(root, out, kg=pack, force_mapping=force, lock_timeout=lock_timeout)
    info = store.info()
    typer.echo(f"store {store.root}: {info['n_cells']} meta-cells x {info['n_nodes']} RNA nodes, "
               f"{info['n_shards']} shards, {info['expression_bytes']} bytes")
