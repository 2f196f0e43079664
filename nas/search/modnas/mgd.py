"""Multiple-gradient descent: the min-norm point of the convex hull of several gradients.

MGD (Désidéri 2012; Sener & Koltun 2018) looks for the convex combination
sum_i w_i g_i with the smallest norm. Its negative is a direction that does
not increase any of the objectives behind the g_i (zero at a Pareto-stationary
point). Everything here works on the Gram matrix G_ij = <g_i, g_j>, so the
vectors themselves (hypernetwork gradients, ~10^5 numbers each) are touched
once.
"""

from __future__ import annotations

import numpy as np

from hwprof.errors import DataError


def min_norm_2(g11: float, g12: float, g22: float) -> float:
    """Weight ``c`` of the first vector in argmin_c |c g1 + (1 - c) g2|^2, c in [0, 1] (closed form)."""
    denom = g11 + g22 - 2.0 * g12
    if denom <= 1e-20:  # identical vectors: any c; keep the midpoint
        return 0.5
    return float(np.clip((g22 - g12) / denom, 0.0, 1.0))


def min_norm_weights(gram: np.ndarray, max_iter: int = 250, tol: float = 1e-10) -> np.ndarray:
    """Simplex weights of the min-norm point for the Gram matrix ``gram`` (Frank-Wolfe with exact line search).

    Starts from the best pair (exact for two vectors), then repeatedly moves
    towards the vertex with the smallest <g_t, current point>, with the
    closed-form step of the two-point problem, until the duality gap is below
    ``tol`` (relative to the squared norm) or ``max_iter`` steps.
    """
    G = np.asarray(gram, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
        raise DataError(f"expected a square non-empty Gram matrix, got shape {G.shape}")
    if not np.all(np.isfinite(G)):
        raise DataError("the Gram matrix holds non-finite values; a gradient was NaN or infinite")
    n = G.shape[0]
    w = np.zeros(n)
    if n == 1:
        w[0] = 1.0
        return w
    best = (np.inf, 0, 1, 0.5)
    for i in range(n):
        for j in range(i + 1, n):
            c = min_norm_2(G[i, i], G[i, j], G[j, j])
            val = c * c * G[i, i] + 2 * c * (1 - c) * G[i, j] + (1 - c) ** 2 * G[j, j]
            if val < best[0]:
                best = (val, i, j, c)
    _, i, j, c = best
    w[i], w[j] = c, 1.0 - c
    if n == 2:
        return w
    for _ in range(max_iter):
        Gw = G @ w
        t = int(np.argmin(Gw))
        vv = float(w @ Gw)  # |current|^2
        gap = vv - Gw[t]  # Frank-Wolfe duality gap
        if gap <= tol * max(vv, 1e-30):
            break
        step = min_norm_2(vv, float(Gw[t]), float(G[t, t]))  # weight kept on the current point
        w *= step
        w[t] += 1.0 - step
    return _polish(G, w)


def _polish(G: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Frank-Wolfe converges slowly (O(1/k)) when the optimum is inside a face; once it has found the
    face (the support of ``w``), solve that face's equality-constrained QP exactly and keep the result
    when it is feasible and no worse."""
    support = np.flatnonzero(w > 1e-9)
    k = support.size
    if k < 2:
        return w
    A = np.zeros((k + 1, k + 1))
    A[:k, :k] = G[np.ix_(support, support)]
    A[:k, k] = 1.0
    A[k, :k] = 1.0
    b = np.zeros(k + 1)
    b[k] = 1.0
    sol = np.linalg.lstsq(A, b, rcond=None)[0][:k]
    if np.any(sol < 0) or not np.all(np.isfinite(sol)):
        return w
    cand = np.zeros_like(w)
    cand[support] = sol / sol.sum()
    return cand if cand @ G @ cand <= w @ G @ w else w


def min_norm_point(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, point) for row vectors: the min-norm element of their convex hull."""
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim != 2:
        raise DataError(f"expected vectors as rows of a 2-D array, got shape {V.shape}")
    w = min_norm_weights(V @ V.T)
    return w, w @ V
