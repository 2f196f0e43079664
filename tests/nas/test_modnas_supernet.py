"""The weight-sharing NB201 supernet and a tiny supernet-mode MODNAS run on digits."""

import json

import pytest
import torch

from nas.search.modnas import ModnasModel, NB201Supernet, train_modnas
from nas.spaces.nb201 import OPS
from tests.nas.test_modnas_train import hypernet_state, same_state, tiny

SUPERNET = dict(steps=6, supernet_warmup_steps=3, supernet_channels=4, supernet_input_size=8, supernet_batch_size=16,
                tasks_per_step=2, checkpoint_every=4)


def onehot(choices):
    return torch.nn.functional.one_hot(torch.tensor(choices), len(OPS)).float()


def test_one_hot_weights_give_that_network_whether_or_not_every_op_runs():
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, num_classes=3).eval()
    x = torch.randn(5, 3, 8, 8)
    w = onehot([1, 2, 3, 4, 0, 3])
    full, sparse = net(x, w, full=True), net(x, w, full=False)
    assert full.shape == (5, 3)
    assert torch.allclose(full, sparse, atol=1e-6)
    other = net(x, onehot([3, 3, 3, 3, 3, 3]))
    assert not torch.allclose(full, other)  # the weights select the operations


def test_straight_through_gradient_reaches_every_option_but_none():
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, num_classes=3).eval()
    w = onehot([3, 3, 3, 3, 3, 3]).requires_grad_(True)
    net(torch.randn(4, 3, 8, 8), w, full=True).sum().backward()
    none = OPS.index("none")
    assert torch.all(w.grad[:, none] == 0)
    others = [k for k in range(len(OPS)) if k != none]
    assert torch.all(w.grad[:, others].abs().sum(0) > 0)


@pytest.fixture(scope="module")
def supernet_run(tmp_path_factory):
    return train_modnas(tiny(tmp_path_factory.mktemp("supernet") / "run", mode="supernet", samples_per_task=1, **SUPERNET))


def test_supernet_mode_saves_the_supernet_and_says_so(supernet_run):
    meta = json.loads((supernet_run / "modnas.json").read_text())
    assert meta["mode"] == "supernet" and meta["accuracy_source"].startswith("supernet:")
    assert meta["accuracy_surrogate"] is None and "supernet.pt" in meta["files"]
    assert "supernet_ce" in meta["training"]["final"] and "error" in meta["training"]["final"]
    model = ModnasModel.load(supernet_run)
    emb, lat = model.embedding(device="pixel3")
    front = model.front(emb, lat, n_rays=4)
    assert all(e.surrogate_error_pct is None and e.predicted_latency_ms > 0 for e in front)


class Stop(Exception):
    pass


def test_supernet_mode_resumes_bit_for_bit(supernet_run, tmp_path):
    out = tmp_path / "resumed"
    cfg = tiny(out, mode="supernet", samples_per_task=1, **SUPERNET)

    def stop(p):
        if p.phase == "hypernetwork" and p.done == 5:
            raise Stop

    with pytest.raises(Stop):
        train_modnas(cfg, stop)
    train_modnas(cfg)
    assert same_state(hypernet_state(out), hypernet_state(supernet_run))
    a = torch.load(out / "supernet.pt", weights_only=True)
    b = torch.load(supernet_run / "supernet.pt", weights_only=True)
    assert same_state(a, b)
