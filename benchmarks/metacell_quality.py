"""Meta-cell quality on real PBMC data: `fast` and `seacells` against a random partition of the same size.

Data: scanpy's pbmc68k_reduced `.raw` (700 cells x 765 genes, log-normalised), turned back into counts
with `counts_from_lognorm`; labels `bulk_labels`. Figures (see `metacell_quality`): label purity
(higher is better), share of expression variance left inside meta-cells and compactness on 30 PCs
(lower is better). Run: `.venv/bin/python benchmarks/metacell_quality.py [--quick]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="One meta-cell size only.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import scanpy as sc

    from celltosg.build._counts import counts_from_lognorm
    from celltosg.build._metacells import make_metacells, metacell_quality

    pbmc = sc.datasets.pbmc68k_reduced()
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    counts = counts_from_lognorm(raw, where="pbmc68k_reduced.raw")
    rng = np.random.default_rng(args.seed)
    print(f"{'size':>5} {'method':>9} {'n_mc':>5} {'purity':>7} {'within_var':>10} {'compact':>8} {'seconds':>8}")
    for size in (10,) if args.quick else (10, 25, 50):
        rows = {}
        for method in ("fast", "seacells", "random"):
            start = time.perf_counter()
            if method == "random":
                shuffled = counts.copy()
                label = np.empty(counts.n_obs, dtype=np.int64)
                label[rng.permutation(counts.n_obs)] = np.arange(counts.n_obs) // size
                shuffled.obs["donor_id"] = label.astype(str)
                metacells = make_metacells(shuffled, size=counts.n_obs, groupby=("donor_id",))
            else:
                metacells = make_metacells(counts, method=method, size=size, seed=args.seed)
            seconds = time.perf_counter() - start
            q = metacell_quality(counts, metacells, label_key="bulk_labels")
            rows[method] = q
            print(f"{size:>5} {method:>9} {q['n_metacells']:>5} {q['purity']:>7.3f} {q['within_variance']:>10.3f} "
                  f"{q['compactness']:>8.3f} {seconds:>8.2f}")
        for method in ("fast", "seacells"):
            print(f"{size:>5} {method:>9} purity / random = {rows[method]['purity'] / rows['random']['purity']:.2f}x")


if __name__ == "__main__":
    main()
