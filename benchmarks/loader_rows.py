"""Load 2,000 random rows of the same 4,000 meta-cells (drawn from the simulated 200,000-meta-cell store)
written twice: as a store of ours and in the reference layout (dense float32 .npy at 412,039 transcript
columns, each gene's value copied into its transcript columns); cold and warm page cache, time and peak
memory (each load in a fresh subprocess: its process peak RSS, and the increase during the load over its
RSS after imports).

Run: .venv/bin/python benchmarks/loader_rows.py [--quick] [--keep] [--chunk-rows N]
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


def write_ours(store, positions: np.ndarray, out: Path, chunk_rows: int):
    """The meta-cells ``positions`` as a store of their own (our layout, ``chunk_rows`` rows per chunk)."""
    from celltosg.store import create_store

    obs = store.obs.iloc[positions].drop(columns=["shard", "row"]).reset_index(drop=True)
    return create_store(out, store.read_rows(positions), obs, store.kg, overwrite=True,
                        chunk_rows=chunk_rows)


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


def _status_mib(field: str) -> float:
    """A field of /proc/self/status (VmRSS: resident now, VmHWM: peak resident) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5\n")
        return True
    except OSError:
        return False


def worker(kind: str, target: str, rows_file: str) -> None:
    """Load the rows once in this fresh process; print seconds and memory (MiB) as JSON.

    Memory comes from /proc/self/status, not getrusage: on Linux ru_maxrss survives exec, so a child
    started by a big parent reports the parent's peak. ``peak_mib`` is the process's peak RSS;
    ``before_mib`` its RSS after imports, just before the load; ``load_peak_mib`` the peak during the
    load (VmHWM reset before it) and ``increase_mib`` = load_peak - before. Library imports (numpy for
    the reference; pandas, pyarrow and zarr for ours) happen before the timer in both.
    """
    import gc

    request = np.load(rows_file)
    if kind == "ours":
        import pyarrow.parquet  # noqa: F401
        import zarr  # noqa: F401

        from celltosg.store import TOSGStore
    gc.collect()
    import_peak = _status_mib("VmHWM")
    before = _status_mib("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    if kind == "reference":
        # np.load(mmap_mode="r"), fancy indexing per shard, vstack; the rows asked are sorted, so the
        # stacked order is the order asked.
        shard_of, row_in = request[0], request[1]
        parts = [np.load(Path(target) / f"part_{k}.npy", mmap_mode="r")[row_in[shard_of == k], :]
                 for k in np.unique(shard_of)]
        X = np.vstack(parts)
    else:
        X = TOSGStore.open(target).read_rows(request[0])
    seconds = time.perf_counter() - start
    load_peak = _status_mib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_mib": max(import_peak, load_peak), "before_mib": before,
                      "load_peak_mib": load_peak, "increase_mib": load_peak - before, "peak_reset": reset,
                      "result_mib": X.nbytes / 2**20, "shape": list(X.shape), "sum": float(X.sum())}))


def run_worker(kind: str, target: Path, rows_file: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, str(target), str(rows_file)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference_layout(store, metacells: np.ndarray, ref_dir: Path) -> list[Path]:
    """The reference-layout files of ``metacells``, reused when a previous run (--keep) wrote the same."""
    stamp = ref_dir / "layout.json"
    key = {"store": str(Path(store.root).resolve()), "metacells": int(len(metacells)),
           "checksum": int(metacells.sum())}
    paths = [ref_dir / f"part_{k}.npy" for k in range(-(-len(metacells) // SHARD_ROWS))]
    if stamp.is_file() and json.loads(stamp.read_text()) == key and all(p.is_file() for p in paths):
        print("reusing the reference layout kept by a previous run")
        return paths
    t = time.perf_counter()
    paths = write_reference(store, metacells, ref_dir)
    stamp.write_text(json.dumps(key))
    print(f"wrote the reference layout ({sum(p.stat().st_size for p in paths) / 1e9:.1f} GB) in "
          f"{time.perf_counter() - t:.0f} s")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 meta-cells, 500 loaded (about 1.6 GB)")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--keep", action="store_true",
                        help="keep the reference-layout files (a later run with the same store reuses them)")
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows per zarr chunk of our store (default: the store default, 256)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from loader_query import bench_store, default_store_dir  # pandas: kept out of the workers

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
    from celltosg.store import DEFAULT_CHUNK_ROWS

    args.chunk_rows = args.chunk_rows or DEFAULT_CHUNK_ROWS
    ours_dir = ref_dir / f"store_{args.chunk_rows}"
    write_ours(store, metacells, ours_dir, args.chunk_rows)
    store_files = [p for p in ours_dir.rglob("*") if p.is_file()]
    shard_bytes = sum(p.stat().st_size for p in (ours_dir / "shards").rglob("*") if p.is_file())
    print(f"our store: chunks of {args.chunk_rows} rows, shards {shard_bytes / 1e6:.1f} MB = "
          f"{shard_bytes / (n_meta * store.n_nodes):.3f} bytes per meta-cell per node")
    paths = reference_layout(store, metacells, ref_dir)
    pick = np.sort(rng.choice(n_meta, n_load, replace=False))
    ref_rows, our_rows = ref_dir / "rows_reference.npy", ref_dir / "rows_ours.npy"
    np.save(ref_rows, np.stack([pick // SHARD_ROWS, pick % SHARD_ROWS]))
    np.save(our_rows, pick[None, :])
    results = {}
    for cache in ("cold", "warm"):
        for kind, target, rows, files in (("reference", ref_dir, ref_rows, paths),
                                          ("ours", ours_dir, our_rows, store_files)):
            if cache == "cold":
                how = drop_cache(files)
            else:
                run_worker(kind, target, rows)  # warm the cache
            results[(cache, kind)] = run_worker(kind, target, rows)
    print(f"{n_load:,} random rows of {n_meta:,} meta-cells; cold cache via {how}; each load in a fresh "
          "subprocess; memory from /proc/self/status (MiB)")
    for cache in ("cold", "warm"):
        ref, ours = results[(cache, "reference")], results[(cache, "ours")]
        for kind, r in (("reference", ref), ("ours", ours)):
            print(f"{cache:>4} {kind:>9}: {r['seconds']:7.3f} s | process peak RSS {r['peak_mib']:7.0f} | "
                  f"RSS before load {r['before_mib']:5.0f} | peak during load {r['load_peak_mib']:7.0f} | "
                  f"increase {r['increase_mib']:7.0f} | result {r['result_mib']:6.0f} | shape {r['shape']}")
        print(f"{cache:>4} ratios: speed-up {ref['seconds'] / ours['seconds']:.1f}x (goal >= 5) | memory, "
              f"process peak RSS {ours['peak_mib'] / ref['peak_mib']:.3f}, increase during load "
              f"{ours['increase_mib'] / ref['increase_mib']:.3f} (goal <= 0.2)")
    if not results[("warm", "reference")]["peak_reset"]:
        print("note: /proc/self/clear_refs not writable; 'peak during load' is the peak since start")
    if not args.keep:
        shutil.rmtree(ref_dir)


if __name__ == "__main__":
    main()
