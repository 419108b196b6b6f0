"""Load 2,000 random rows of the same 4,000 meta-cells (drawn from the simulated 200,000-meta-cell store)
written twice: as a store of ours and in the reference layout (dense float32 .npy at 412,039 transcript
columns, each gene's value copied into its transcript columns); cold and warm page cache, time and peak
memory (each load in a fresh subprocess).

Run: .venv/bin/python benchmarks/loader_rows.py [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from loader_query import bench_store, default_store_dir  # noqa: E402

REFERENCE_WIDTH = 412_039
MAPPED_TRANSCRIPT_COLUMNS = 48_379  # the reference maps 41,149 genes onto 48,379 transcript columns
SHARD_ROWS = 10_000


def transcript_columns(n_genes: int, seed: int = 0) -> list[np.ndarray]:
    """Transcript columns of each gene (every gene >= 1 column, MAPPED_TRANSCRIPT_COLUMNS in all)."""
    rng = np.random.default_rng(seed)
    extra = np.bincount(rng.integers(0, n_genes, MAPPED_TRANSCRIPT_COLUMNS - n_genes), minlength=n_genes)
    columns = rng.permutation(REFERENCE_WIDTH)[:MAPPED_TRANSCRIPT_COLUMNS]
    bounds = np.concatenate([[0], np.cumsum(1 + extra)])
    return [np.sort(columns[bounds[g]:bounds[g + 1]]) for g in range(n_genes)]


def write_reference(store, positions: np.ndarray, out: Path) -> list[Path]:
    """The meta-cells ``positions`` as reference shards ``part_k.npy`` (float32, rows x 412,039)."""
    out.mkdir(parents=True, exist_ok=True)
    mapping = transcript_columns(store.n_nodes)
    gene_of_column = np.full(REFERENCE_WIDTH, -1, dtype=np.int64)
    for gene, cols in enumerate(mapping):
        gene_of_column[cols] = gene
    mapped = gene_of_column >= 0
    paths = []
    for k, start in enumerate(range(0, len(positions), SHARD_ROWS)):
        rows = positions[start:start + SHARD_ROWS]
        path = out / f"part_{k}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(rows), REFERENCE_WIDTH))
        for b in range(0, len(rows), 256):
            genes = store.read_rows(rows[b:b + 256])
            block = np.zeros((genes.shape[0], REFERENCE_WIDTH), dtype=np.float32)
            block[:, mapped] = genes[:, gene_of_column[mapped]]
            array[b:b + 256] = block
        array.flush()
        del array
        paths.append(path)
    return paths


def write_ours(store, positions: np.ndarray, out: Path):
    """The meta-cells ``positions`` as a store of their own (our layout, default chunking)."""
    from celltosg.store import create_store

    obs = store.obs.iloc[positions].drop(columns=["shard", "row"]).reset_index(drop=True)
    return create_store(out, store.read_rows(positions), obs, store.kg, overwrite=True)


def drop_cache(files: list[Path]) -> str:
    """Evict files from the page cache: /proc/sys/vm/drop_caches if allowed, else posix_fadvise(DONTNEED)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches"
    except OSError:
        for file in files:
            fd = os.open(file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        return "posix_fadvise(DONTNEED) per file (drop_caches not allowed)"


def worker(kind: str, target: str, rows_file: str) -> None:
    """Load the rows once in this fresh process; print seconds and peak RSS (MiB) as JSON."""
    import resource

    request = np.load(rows_file)
    if kind == "reference":
        shard_of, row_in = request[0], request[1]
        start = time.perf_counter()
        parts, order = [], []
        for k in np.unique(shard_of):
            matrix = np.load(Path(target) / f"part_{k}.npy", mmap_mode="r")
            pick = np.flatnonzero(shard_of == k)
            parts.append(matrix[row_in[pick], :])
            order.extend(pick)
        X = np.vstack(parts)[np.argsort(order)]
    else:
        from celltosg.store import TOSGStore

        store = TOSGStore.open(target)
        start = time.perf_counter()
        X = store.read_rows(request[0])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "shape": list(X.shape), "sum": float(X.sum())}))


def run_worker(kind: str, target: Path, rows_file: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, str(target), str(rows_file)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 meta-cells, 500 loaded (about 1.6 GB)")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the reference-layout files")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    n_meta, n_load = (1_000, 500) if args.quick else (4_000, 2_000)
    store = bench_store(args.store or default_store_dir(args.quick), 20_000 if args.quick else 200_000)
    need = n_meta * REFERENCE_WIDTH * 4
    free = shutil.disk_usage(Path(store.root).parent).free
    print(f"reference layout needs {need / 1e9:.1f} GB; free disk {free / 1e9:.0f} GB")
    if free < need * 1.2:
        sys.exit("not enough free disk for the reference layout")
    rng = np.random.default_rng(0)
    metacells = np.sort(rng.choice(store.n_cells, n_meta, replace=False))
    ref_dir = Path(store.root).parent / "celltosg_bench_reference_layout"
    ours_dir = ref_dir / "store"
    write_ours(store, metacells, ours_dir)
    t = time.perf_counter()
    paths = write_reference(store, metacells, ref_dir)
    print(f"wrote the reference layout ({sum(p.stat().st_size for p in paths) / 1e9:.1f} GB) in "
          f"{time.perf_counter() - t:.0f} s")
    pick = np.sort(rng.choice(n_meta, n_load, replace=False))
    ref_rows, our_rows = ref_dir / "rows_reference.npy", ref_dir / "rows_ours.npy"
    np.save(ref_rows, np.stack([pick // SHARD_ROWS, pick % SHARD_ROWS]))
    np.save(our_rows, pick[None, :])
    store_files = [p for p in ours_dir.rglob("*") if p.is_file()]
    results = {}
    for cache in ("cold", "warm"):
        for kind, target, rows, files in (("reference", ref_dir, ref_rows, paths),
                                          ("ours", ours_dir, our_rows, store_files)):
            if cache == "cold":
                how = drop_cache(files)
            else:
                run_worker(kind, target, rows)  # warm the cache
            results[(cache, kind)] = run_worker(kind, target, rows)
    print(f"{n_load:,} random rows of {n_meta:,} meta-cells; cold cache via {how}")
    for cache in ("cold", "warm"):
        ref, ours = results[(cache, "reference")], results[(cache, "ours")]
        print(f"{cache:>4}: reference {ref['seconds']:.2f} s, peak {ref['peak_mib']:.0f} MiB, shape {ref['shape']} | "
              f"ours {ours['seconds']:.3f} s, peak {ours['peak_mib']:.0f} MiB, shape {ours['shape']} | "
              f"speed-up {ref['seconds'] / ours['seconds']:.1f}x, memory ratio "
              f"{ours['peak_mib'] / ref['peak_mib']:.3f}")
    if not args.keep:
        shutil.rmtree(ref_dir)


if __name__ == "__main__":
    main()
