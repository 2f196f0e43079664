"""Min-norm solver of MODNAS's multiple-gradient descent, against closed forms and a brute-force QP."""

import itertools

import numpy as np
import pytest
import torch

from hwprof.errors import DataError
from nas.search.modnas.hypernet import HyperNetwork
from nas.search.modnas.mgd import min_norm_2, min_norm_point, min_norm_weights
from nas.search.modnas.trainer import mgd_direction, per_task_gradients


def brute_force_qp(G: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact min of w^T G w on the simplex: solve the KKT system on every face, keep the best feasible."""
    n = G.shape[0]
    best_w, best_v = None, np.inf
    for k in range(1, n + 1):
        for face in itertools.combinations(range(n), k):
            idx = list(face)
            A = np.zeros((k + 1, k + 1))
            A[:k, :k] = 2 * G[np.ix_(idx, idx)]
            A[:k, k] = 1.0
            A[k, :k] = 1.0
            b = np.zeros(k + 1)
            b[k] = 1.0
            sol = np.linalg.lstsq(A, b, rcond=None)[0]
            w = np.zeros(n)
            w[idx] = sol[:k]
            if np.any(w < -1e-12) or abs(w.sum() - 1) > 1e-9:
                continue
            v = float(w @ G @ w)
            if v < best_v - 1e-15:
                best_w, best_v = w, v
    return best_w, best_v


def test_two_vectors_match_the_closed_form():
    rng = np.random.default_rng(0)
    for _ in range(200):
        g1, g2 = rng.normal(size=(2, 7)) * rng.uniform(0.1, 10, size=(2, 1))
        c = min_norm_2(g1 @ g1, g1 @ g2, g2 @ g2)
        # closed form of argmin_c |c g1 + (1-c) g2|^2, clipped to [0, 1]
        expected = np.clip(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)), 0, 1)
        assert c == pytest.approx(expected, abs=1e-12)
        w = min_norm_weights(np.array([[g1 @ g1, g1 @ g2], [g1 @ g2, g2 @ g2]]))
        assert w == pytest.approx([expected, 1 - expected], abs=1e-12)


def test_two_vectors_edge_cases():
    g = np.array([1.0, 2.0])
    # one vector inside the other's direction and shorter: the shorter one is the min-norm point
    assert min_norm_2(g @ g, g @ (3 * g), 9 * g @ g) == 1.0
    # opposite vectors of equal length: the midpoint is zero
    w, p = min_norm_point(np.stack([g, -g]))
    assert w == pytest.approx([0.5, 0.5]) and np.allclose(p, 0)
    # identical vectors: any weights; the point is the vector itself
    w, p = min_norm_point(np.stack([g, g]))
    assert np.allclose(p, g)


@pytest.mark.parametrize("dim", [2, 3, 10])
def test_three_vectors_match_a_brute_force_qp(dim):
    rng = np.random.default_rng(dim)
    for trial in range(100):
        V = rng.normal(size=(3, dim)) * rng.uniform(0.2, 5, size=(3, 1))
        if trial % 3 == 0:
            V[2] = 0.5 * V[0] + 0.3 * V[1] + 0.1 * rng.normal(size=dim)  # interior / face cases
        G = V @ V.T
        w = min_norm_weights(G)
        bw, bv = brute_force_qp(G)
        assert w.sum() == pytest.approx(1.0) and np.all(w >= -1e-12)
        assert float(w @ G @ w) == pytest.approx(bv, rel=1e-6, abs=1e-10)
        assert np.allclose(w @ V, bw @ V, atol=1e-5 * max(1.0, np.abs(V).max()))


def test_min_norm_point_is_a_common_descent_direction():
    rng = np.random.default_rng(3)
    V = rng.normal(size=(6, 20)) + 1.0  # correlated gradients: a common descent direction exists
    w, d = min_norm_point(V)
    assert np.linalg.norm(d) > 0
    # <d, g_i> >= |d|^2 for every i (optimality of the min-norm point), so -d decreases every objective
    assert np.all(V @ d >= d @ d * (1 - 1e-6))


def test_pareto_stationary_gradients_give_zero():
    V = np.array([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]])  # zero is inside their convex hull
    _, d = min_norm_point(V)
    assert np.linalg.norm(d) < 1e-6


def test_bad_gram_matrices():
    with pytest.raises(DataError, match="square"):
        min_norm_weights(np.ones((2, 3)))
    with pytest.raises(DataError, match="non-finite"):
        min_norm_weights(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    assert min_norm_weights(np.array([[4.0]])) == pytest.approx([1.0])


def test_per_task_gradients_match_one_backward_per_task():
    torch.manual_seed(0)
    net = HyperNetwork(4, [5, 3, 5], hidden=(8,))
    torch.nn.init.normal_(net.net[-1].weight, std=0.3)  # leave the zero init so gradients are non-trivial
    emb, pref = torch.randn(3, 4), torch.softmax(torch.randn(3, 2), -1)
    cot = torch.randn(3, 3, 5)
    G = per_task_gradients(net, emb, pref, cot)
    for t in range(3):
        net.zero_grad()
        (net(emb[t : t + 1], pref[t : t + 1])[0] * cot[t]).sum().backward()
        flat = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        assert torch.allclose(G[t], flat, atol=1e-6)
    d, w = mgd_direction(G)
    unit = G / G.norm(dim=1, keepdim=True)
    assert torch.allclose(d, torch.from_numpy(w).float() @ unit, atol=1e-6)
    # zero rows (a task without gradient) are ignored
    d0, w0 = mgd_direction(torch.cat([G, torch.zeros(1, G.shape[1])]))
    assert w0[-1] == 0 and torch.allclose(d0, d, atol=1e-6)
