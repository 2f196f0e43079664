"""Straight-through samplers, temperature schedules, the hypernetwork's shape contract and the supernet."""

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError, DataError
from nas.search.modnas.hypernet import HyperNetwork
from nas.search.modnas.sampling import MASK_LOGIT, TemperatureSchedule, gumbel_st, reinmax, sample
from nas.search.modnas.supernet import NB201Supernet
from nas.spaces import NB201Space


def _is_one_hot(y: torch.Tensor) -> bool:
    v = y.detach()
    return bool(torch.all((v == 0) | ((v - 1).abs() < 1e-6)) and torch.allclose(v.sum(-1), torch.ones(v.shape[:-1])))


@pytest.mark.parametrize("fn", [reinmax, gumbel_st])
def test_samples_are_one_hot_and_follow_the_softmax(fn):
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    g = torch.Generator().manual_seed(0)
    y = fn(logits.expand(20000, 4), 0.5, g)
    assert _is_one_hot(y)
    freq = y.detach().mean(0)
    assert torch.allclose(freq, torch.softmax(logits[0], 0), atol=0.015)


def test_reinmax_is_unbiased_for_a_linear_loss_at_tau_1():
    """ReinMax is second-order accurate: for a linear loss its expected gradient is the exact one."""
    torch.manual_seed(0)
    theta = torch.randn(5, requires_grad=True)
    c = torch.randn(5)
    y = reinmax(theta[None].expand(40000, 5), 1.0, torch.Generator().manual_seed(1))
    (y @ c).mean().backward()
    exact = theta.detach().clone().requires_grad_(True)
    (torch.softmax(exact, 0) @ c).backward()
    assert torch.allclose(theta.grad, exact.grad, atol=0.01)
    # plain straight-through (Gumbel) is biased for the same loss
    biased = theta.detach().clone().requires_grad_(True)
    (gumbel_st(biased[None].expand(40000, 5), 1.0, torch.Generator().manual_seed(1)) @ c).mean().backward()
    assert (biased.grad - exact.grad).abs().max() > 0.03


def test_gumbel_st_gradient_is_that_of_the_soft_sample():
    logits = torch.tensor([[0.3, -0.2, 1.0]], requires_grad=True)
    c = torch.tensor([1.0, 2.0, -3.0])
    (gumbel_st(logits, 0.7, torch.Generator().manual_seed(5))[0] @ c).backward()
    # replay the same noise: the gradient is d/dlogits of softmax((logits + g) / tau) . c
    u = torch.rand((1, 3), generator=torch.Generator().manual_seed(5)).clamp_(1e-10, 1 - 1e-7)
    ref = logits.detach().clone().requires_grad_(True)
    (torch.softmax((ref - torch.log(-torch.log(u))) / 0.7, -1)[0] @ c).backward()
    assert torch.allclose(logits.grad, ref.grad, atol=1e-6)


@pytest.mark.parametrize("name", ["reinmax", "gdas"])
def test_masked_options_are_never_sampled_and_gradients_stay_finite(name):
    logits = torch.zeros(500, 2, 4)
    logits[:, 1, 2:] = MASK_LOGIT  # layer 1 has two options
    logits.requires_grad_(True)
    y = sample(name, logits, 0.3, torch.Generator().manual_seed(0))
    assert float(y.detach()[:, 1, 2:].sum()) == 0.0
    (y * torch.randn(500, 2, 4)).sum().backward()
    assert torch.all(torch.isfinite(logits.grad))
    with pytest.raises(ConfigError, match="unknown sampler"):
        sample("gumbel", logits, 1.0)


def test_temperature_schedules():
    exp = TemperatureSchedule(4.0, 0.25)
    assert exp(0, 11) == pytest.approx(4.0) and exp(10, 11) == pytest.approx(0.25) and exp(5, 11) == pytest.approx(1.0)
    lin = TemperatureSchedule(2.0, 1.0, "linear")
    assert [lin(i, 3) for i in range(3)] == pytest.approx([2.0, 1.5, 1.0])
    assert TemperatureSchedule(3.0, 1.0, "constant")(7, 10) == 3.0
    for bad in ({"start": 0.0, "end": 1.0}, {"start": 1.0, "end": float("nan")}, {"start": 1.0, "end": 1.0, "kind": "cosine"}):
        with pytest.raises(ConfigError):
            TemperatureSchedule(**bad)


def test_hypernetwork_shapes_masking_and_uniform_start():
    net = HyperNetwork(3, [5, 2, 4], hidden=(16,))
    emb, pref = torch.randn(7, 3), torch.softmax(torch.randn(7, 2), -1)
    with torch.no_grad():
        logits = net(emb, pref)
    assert logits.shape == (7, 3, 5)
    probs = torch.softmax(logits, -1)
    # zero-initialised output layer: uniform over each layer's own options, padded options get nothing
    assert torch.allclose(probs[:, 0], torch.full((7, 5), 0.2))
    assert torch.allclose(probs[:, 1, :2], torch.full((7, 2), 0.5)) and float(probs[:, 1, 2:].sum()) < 1e-30
    with pytest.raises(DataError, match="embeddings of shape"):
        net(torch.randn(7, 4), pref)
    with pytest.raises(DataError, match="preferences of shape"):
        net(emb, torch.ones(7, 3) / 3)


def test_hypernetwork_encoding_matches_the_space_one_hot():
    space = NB201Space()
    net = HyperNetwork(2, [len(o) for _, o in space.layers], hidden=(4,))
    choices = np.random.default_rng(0).integers(0, 5, size=(9, 6))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(choices), 5).float()
    assert np.array_equal(net.encoding(onehot).numpy(), space.encode_choices(choices))
    uneven = HyperNetwork(2, [3, 1, 2], hidden=(4,))
    y = torch.zeros(1, 3, 3)
    y[0, 0, 2] = y[0, 1, 0] = y[0, 2, 1] = 1
    assert uneven.encoding(y).tolist() == [[0, 0, 1, 1, 0, 1]]


def test_supernet_straight_through_gradient_reaches_every_live_option():
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, cells_per_stage=1, num_classes=3).train()
    x = torch.randn(6, 3, 8, 8)
    logits = torch.zeros(6, 5, requires_grad=True)
    w = reinmax(logits, 1.0, torch.Generator().manual_seed(0))
    out_full = net(x, w, full=True)
    out_sampled = net(x, w.detach(), full=False)
    assert out_full.shape == (6, 3)
    assert torch.allclose(out_full, out_sampled, atol=1e-5)  # same network, only the gradient differs
    torch.nn.functional.cross_entropy(out_full, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert torch.all(logits.grad.abs().sum(1) > 0)


def test_supernet_all_none_cell_ignores_its_input():
    net = NB201Supernet(channels=4, cells_per_stage=1, num_classes=3).eval()
    w = torch.zeros(6, 5)
    w[:, 0] = 1.0  # every edge "none": each cell outputs zeros, the reduction blocks see a constant
    a = net(torch.randn(2, 3, 8, 8), w)
    b = net(torch.randn(2, 3, 8, 8), w)
    assert torch.allclose(a, b, atol=1e-6)
