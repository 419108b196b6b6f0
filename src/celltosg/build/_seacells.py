"""Kernel archetypal analysis for meta-cells, as published in SEACells (Persad et al., 2023).

Steps, following the paper and its reference code (written anew here):

1. Adaptive Gaussian kernel on a kNN graph of the PCA embedding: ``M_ij = exp(-|z_i - z_j|^2 /
   (s_i s_j))`` on the union of the kNN graph and self-loops, ``s_i`` the distance from cell ``i`` to its
   ``k // 2``-th neighbour (k = 15). ``K = M M^T``.
2. Waypoint initialisation (as in Palantir): diffusion map of an adaptive kNN kernel (k = 30, bandwidth the
   10th neighbour distance), multiscale components ``v_j * l_j / (1 - l_j)`` for eigenvectors 1..9,
   max-min sampling along each component; missing archetypes come from greedy column-subset selection on
   ``K`` (Farahat et al., 2013).
3. Alternate Frank-Wolfe updates of the assignments ``A`` (k x n, columns on the simplex) and archetypes
   ``B`` (n x k, columns on the simplex) minimising ``|M - M B A|_F`` (50 inner steps, step ``2/(t+2)``),
   at least 10 and at most 50 rounds, stopping when the change of the error drops below 1e-3 of the first.
   Gradients are updated incrementally (each step moves ``A`` or ``B`` towards a one-hot matrix, so the
   gradient moves towards a few columns of a precomputed product): the same iterates as recomputing them,
   at a cost of cells x meta-cells per step instead of cells x meta-cells^2.
4. Each cell goes to the archetype of largest weight in its column of ``A``.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


def seacells_labels(
    Z: np.ndarray,
    k: int,
    *,
    n_neighbors: int = 15,
    n_waypoint_eigs: int = 10,
    max_iter: int = 50,
    min_iter: int = 10,
    convergence_epsilon: float = 1e-3,
    fw_steps: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Meta-cell label per cell, int64 (n,), from an embedding ``Z`` (n, d); labels are 0..k'-1, k' <= k."""
    rng = np.random.default_rng(seed)
    M = adaptive_kernel(Z, n_neighbors)
    K = sp.csr_matrix(M @ M.T)
    archetypes = initial_archetypes(Z, K, k, n_neighbors=n_neighbors, n_waypoint_eigs=n_waypoint_eigs, rng=rng)
    n, k = len(Z), len(archetypes)
    B = np.zeros((n, k))
    B[archetypes, np.arange(k)] = 1.0
    A = rng.random((k, n)) * (rng.random((k, n)) < 0.25)
    A[rng.integers(0, k, n), np.arange(n)] += rng.random(n)  # every cell starts with some weight
    A /= A.sum(axis=0, keepdims=True)
    A = update_assignments(K, B, A, fw_steps)
    errors = [reconstruction_error(M, K, A, B)]
    threshold = convergence_epsilon * errors[0]
    converged = False
    while (not converged and len(errors) <= max_iter) or len(errors) <= min_iter:
        A = update_assignments(K, B, A, fw_steps)
        B = update_archetypes(K, A, B, fw_steps)
        errors.append(reconstruction_error(M, K, A, B))
        converged = abs(errors[-2] - errors[-1]) < threshold
    if not converged:
        logger.warning("SEACells did not converge in %d rounds (error %.4g -> %.4g); labels kept",
                       max_iter, errors[0], errors[-1])
    labels = A.argmax(axis=0)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def adaptive_kernel(Z: np.ndarray, n_neighbors: int = 15) -> sp.csr_matrix:
    """Symmetric kernel (n, n) on the union kNN graph with self-loops; bandwidth = k//2-th neighbour distance."""
    distances, neighbours = _knn(Z, n_neighbors)
    sigma = _bandwidth(distances, max(1, n_neighbors // 2))
    n, m = neighbours.shape
    graph = sp.csr_matrix((np.ones(n * m), (np.repeat(np.arange(n), m), neighbours.ravel())), shape=(n, n))
    graph = (graph + graph.T + sp.identity(n, format="csr")).tocoo()
    i, j = graph.row, graph.col
    squared = ((Z[i] - Z[j]) ** 2).sum(axis=1)
    return sp.csr_matrix((np.exp(-squared / (sigma[i] * sigma[j])), (i, j)), shape=(n, n))


def initial_archetypes(
    Z: np.ndarray, K: sp.csr_matrix, k: int, *, n_neighbors: int, n_waypoint_eigs: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of ``k`` distinct cells (fewer only if there are fewer cells): waypoints, then greedy picks."""
    components = multiscale_components(Z, n_components=n_neighbors, n_eigs=n_waypoint_eigs, rng=rng)
    waypoints = rng.permutation(max_min_sampling(components, k, rng))
    greedy = greedy_column_selection(K, min(len(Z), max(k - len(waypoints), 0) + 10))
    chosen = np.concatenate([waypoints, greedy]).astype(np.int64)
    _, first = np.unique(chosen, return_index=True)
    return chosen[np.sort(first)][:k]


def multiscale_components(Z: np.ndarray, *, n_components: int, n_eigs: int, rng: np.random.Generator) -> np.ndarray:
    """Diffusion components 1..n_eigs-1 scaled by l / (1 - l), float64 (n, <= n_eigs - 1)."""
    distances, neighbours = _knn(Z, 30)
    sigma = _bandwidth(distances, 10)
    n, m = neighbours.shape
    rows = np.repeat(np.arange(n), m)
    W = sp.csr_matrix((np.exp(-distances.ravel() / sigma[rows]), (rows, neighbours.ravel())), shape=(n, n))
    W = W + W.T
    degree = np.asarray(W.sum(axis=1)).ravel()
    root = 1.0 / np.sqrt(degree)
    S = sp.diags(root) @ W @ sp.diags(root)
    n_components = min(n_components, n - 1)
    if n <= 200:
        values, vectors = np.linalg.eigh(S.toarray())
    else:
        from scipy.sparse.linalg import eigsh

        values, vectors = eigsh(S, k=n_components, which="LA", v0=rng.random(n), tol=1e-6)
    order = np.argsort(-values)[:n_components]
    values, vectors = values[order], root[:, None] * vectors[:, order]  # eigenvectors of D^-1 W
    vectors /= np.linalg.norm(vectors, axis=0, keepdims=True)
    use = np.arange(1, min(n_eigs, len(values)))
    scale = values[use] / np.maximum(1.0 - values[use], 1e-12)
    return vectors[:, use] * scale


def max_min_sampling(components: np.ndarray, n_waypoints: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct waypoint indices: per component, a random start then repeatedly the farthest cell."""
    per_component = n_waypoints // max(components.shape[1], 1)
    chosen: list[int] = []
    for vector in components.T:
        picks = [int(rng.integers(len(vector)))]
        nearest = np.abs(vector - vector[picks[0]])
        for _ in range(1, per_component):
            picks.append(int(np.argmax(nearest)))
            nearest = np.minimum(nearest, np.abs(vector - vector[picks[-1]]))
        chosen.extend(picks)
    _, first = np.unique(chosen, return_index=True)
    return np.asarray(chosen, dtype=np.int64)[np.sort(first)]


def greedy_column_selection(K: sp.csr_matrix, n_select: int) -> np.ndarray:
    """Greedy adaptive column-subset selection on a symmetric PSD ``K`` (n, n): ``n_select`` indices.

    Each step takes the column with the largest ``f / g`` (``f``: squared norm of its projection on the
    residual Gram, ``g``: its residual diagonal) and deflates both (Farahat, Ghodsi, Kamel, 2013).
    """
    n = K.shape[0]
    f = np.asarray(K.multiply(K).sum(axis=0)).ravel()
    g = K.diagonal().astype(np.float64)
    omega = np.zeros((n_select, n))
    centers = np.zeros(n_select, dtype=np.int64)
    for j in range(n_select):
        score = np.where(g > 1e-12, f / np.where(g > 1e-12, g, 1.0), -np.inf)
        score[centers[:j]] = -np.inf
        p = int(np.argmax(score))
        delta = K[[p]].toarray().ravel() - omega[:j, p] @ omega[:j]
        o = delta / np.sqrt(max(delta[p], 1e-12))
        Ko = K @ o
        f += -2.0 * o * (Ko - omega[:j].T @ (omega[:j] @ o)) + (o @ o) * o * o
        g -= o * o
        omega[j], centers[j] = o, p
    return centers


def update_assignments(K: sp.csr_matrix, B: np.ndarray, A: np.ndarray, steps: int) -> np.ndarray:
    """Frank-Wolfe on A (k, n): gradient ``2 (B^T K B A - B^T K)``; returns a new array."""
    A = A.copy()
    KB = np.asarray(K @ B)  # (n, k)
    t1 = B.T @ KB  # (k, k)
    t1A = t1 @ A
    columns = np.arange(A.shape[1])
    for t in range(steps):
        best = np.argmin(t1A - KB.T, axis=0)
        step = 2.0 / (t + 2.0)
        A *= 1.0 - step
        A[best, columns] += step
        t1A = (1.0 - step) * t1A + step * t1[:, best]
    return A


def update_archetypes(K: sp.csr_matrix, A: np.ndarray, B: np.ndarray, steps: int) -> np.ndarray:
    """Frank-Wolfe on B (n, k): gradient ``2 (K B A A^T - K A^T)``; returns a new array."""
    B = B.copy()
    AAt = A @ A.T  # (k, k)
    KAt = np.asarray(K @ A.T)  # (n, k)
    KBAAt = np.asarray(K @ B) @ AAt
    columns = np.arange(B.shape[1])
    for t in range(steps):
        best = np.argmin(KBAAt - KAt, axis=0)
        step = 2.0 / (t + 2.0)
        B *= 1.0 - step
        B[best, columns] += step
        KBAAt = (1.0 - step) * KBAAt + step * np.asarray(K[best].T @ AAt)  # K symmetric: K[:, best] = K[best].T
    return B


def reconstruction_error(M: sp.csr_matrix, K: sp.csr_matrix, A: np.ndarray, B: np.ndarray) -> float:
    """``|M - M B A|_F`` through ``K = M M^T`` (M symmetric), without forming an n x n matrix."""
    KB = np.asarray(K @ B)
    squared = float(M.multiply(M).sum()) - 2.0 * float((KB * A.T).sum()) + float(((B.T @ KB) * (A @ A.T)).sum())
    return float(np.sqrt(max(squared, 0.0)))


def _knn(Z: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices (n, m) of each cell's nearest other cells, m = min(n_neighbors, n) - 1."""
    from sklearn.neighbors import NearestNeighbors

    m = max(min(n_neighbors, len(Z)), 2)
    distances, neighbours = NearestNeighbors(n_neighbors=m).fit(Z).kneighbors(Z)
    return distances[:, 1:], neighbours[:, 1:]


def _bandwidth(distances: np.ndarray, rank: int) -> np.ndarray:
    """Distance to the ``rank``-th neighbour per cell (n,), zeros replaced by the smallest positive one."""
    sigma = distances[:, min(rank, distances.shape[1]) - 1].astype(np.float64)
    positive = sigma[sigma > 0]
    sigma[sigma <= 0] = positive.min() if positive.size else 1.0
    return sigma
