"""Our SEACells implementation against the published `SEACells` package (0.3.3) on real PBMC data.

Checks that the adaptive kernel and the Frank-Wolfe assignment update are the same numbers, and compares
meta-cell quality (purity, within-meta-cell variance, compactness; see `metacell_quality`) and time.
The package is not a dependency (it pulls jax, palantir and pyranges); run this in a side environment
that sees ours:

    python -m venv /tmp/scenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/scenv/lib/python3.11/site-packages/main.pth
    /tmp/scenv/bin/pip install seacells==0.3.3
    PYTHONPATH=src /tmp/scenv/bin/python benchmarks/seacells_reference.py [--quick]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Meta-cell size 25 only.")
    args = parser.parse_args()

    import tqdm
    import tqdm.notebook

    tqdm.notebook.tqdm = tqdm.tqdm  # the package imports the notebook bar at import time
    import numpy as np
    import scanpy as sc
    import scipy.sparse as sp
    from SEACells import core

    from celltosg.build import _seacells as ours
    from celltosg.build._counts import counts_from_lognorm
    from celltosg.build._metacells import make_metacells, metacell_quality, pca_embedding

    pbmc = sc.datasets.pbmc68k_reduced()
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    counts = counts_from_lognorm(raw)
    cells = counts.copy()
    cells.obsm["X_pca"] = pca_embedding(counts.X, seed=0)
    for size in (25,) if args.quick else (10, 25):
        k = round(counts.n_obs / size)
        np.random.seed(0)
        model = core.SEACells(cells, build_kernel_on="X_pca", n_SEACells=k, verbose=False)
        model.construct_kernel_matrix()
        kernel_diff = abs(model.kernel_matrix.tocsr() - ours.adaptive_kernel(cells.obsm["X_pca"], 15)).max()
        start = time.perf_counter()
        model.initialize_archetypes()
        try:
            model.fit(min_iter=10, max_iter=50)
        except RuntimeWarning as warning:  # raised after the labels are written
            print(f"package: {warning}")
        package_seconds = time.perf_counter() - start
        labelled = counts.copy()
        labelled.obs["donor_id"] = model.get_hard_assignments()["SEACell"].to_numpy()
        theirs = metacell_quality(counts, make_metacells(labelled, size=counts.n_obs, groupby=("donor_id",)),
                                  label_key="bulk_labels")
        def dense(matrix):
            return np.asarray(matrix.todense()) if sp.issparse(matrix) else np.asarray(matrix)

        B = dense(model.B_)
        A0 = np.random.default_rng(0).random((B.shape[1], B.shape[0]))
        A0 /= A0.sum(axis=0)
        A_theirs = dense(model._updateA(sp.csr_matrix(B), sp.csr_matrix(A0)))
        update_diff = np.abs(A_theirs - ours.update_assignments(sp.csr_matrix(model.K), B, A0, model.max_FW_iter)).max()
        start = time.perf_counter()
        our_metacells = make_metacells(counts, method="seacells", size=size, seed=0)
        our_seconds = time.perf_counter() - start
        mine = metacell_quality(counts, our_metacells, label_key="bulk_labels")
        print(f"size {size}: kernel max |diff| {kernel_diff:.1e}, assignment update max |diff| {update_diff:.1e}")
        for name, q, seconds in (("package", theirs, package_seconds), ("ours", mine, our_seconds)):
            print(f"  {name:>8}: {q['n_metacells']} meta-cells, purity {q['purity']:.3f}, within variance "
                  f"{q['within_variance']:.3f}, compactness {q['compactness']:.3f}, {seconds:.1f} s")
        print(f"  purity ours / package = {mine['purity'] / theirs['purity']:.3f}")


if __name__ == "__main__":
    main()
