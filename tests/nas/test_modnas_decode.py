"""Decoding a ray: the architecture returned is the best the surrogates know among the hypernetwork's candidates."""

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError
from nas.search.modnas import ARGMAX, DecodeSettings, ModnasConfig, ModnasModel, preference_rays, train_modnas
from nas.search.modnas.decode import all_choices, decode_settings
from nas.search.modnas.objectives import scalarise

DEVICES = ("pixel3", "titanx_1", "gold_6240")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = ModnasConfig.create(
        str(tmp_path_factory.mktemp("decode") / "run"), devices=DEVICES, steps=40, max_table_archs=1000, latency_epochs=2,
        accuracy_epochs=10, hidden=(16,), surrogate_hidden=(32,), tasks_per_step=4, samples_per_task=4, n_refs=4,
    )
    return ModnasModel.load(train_modnas(cfg))


def training_loss(model, device, prefs, choices):
    """The scalarised, normalised surrogate objectives of ``choices`` — computed here from the models alone."""
    space = model.space
    every = all_choices([5] * 6)
    enc_all = torch.from_numpy(space.encode_choices(every))
    emb, _ = model.embedding(device=device)
    emb_t = torch.from_numpy(emb)[None]
    enc = torch.from_numpy(space.encode_choices(np.asarray(choices)))
    with torch.no_grad():
        log_err_all = torch.log(model.accuracy(enc_all).clamp_min(0.1))
        z_all = model.latency(enc_all, emb_t)
        err = (torch.log(model.accuracy(enc).clamp_min(0.1)) - log_err_all.min()) / (log_err_all.max() - log_err_all.min())
        lat = (model.latency(enc, emb_t) - z_all.min()) / (z_all.max() - z_all.min())
    obj = torch.stack([err, lat], -1).double()
    return scalarise(obj, torch.as_tensor(prefs, dtype=torch.float64), "chebyshev").numpy()


def one_edge_changes(choices):
    out = []
    for layer in range(6):
        for op in range(5):
            if op != choices[layer]:
                row = list(choices)
                row[layer] = op
                out.append(row)
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_the_accuracy_end_is_a_network_no_one_edge_change_improves(model, device):
    """The preference-1.0 pick: a hypernetwork's argmax can be a network that one changed edge improves under its own
    training objective (fails with the argmax answer of the previous code); the decoded answer cannot."""
    emb, _ = model.embedding(device=device)
    picked = list(model.pick(emb, 1.0).choices)
    mine = training_loss(model, device, [1.0, 0.0], [picked])[0]
    assert mine <= training_loss(model, device, [1.0, 0.0], one_edge_changes(picked)).min() + 1e-6


def test_every_ray_is_at_least_as_good_as_the_argmax_and_the_samples(model):
    emb, _ = model.embedding(device="titanx_1")
    rays = preference_rays(8)
    settings = DecodeSettings(samples=16, local_search=False)
    chosen = model.architectures(emb, rays, settings)
    plain = model.architectures(emb, rays, ARGMAX)
    logits = model.logits(emb, rays)
    improved = 0
    for r, (c, a) in enumerate(zip(chosen, plain)):
        gen = torch.Generator().manual_seed(settings.seed)
        samples = torch.multinomial(torch.softmax(logits[r].double(), -1), 16, replacement=True, generator=gen).T.numpy()
        cands = [model.space.to_choices(a)] + [list(s) for s in samples]
        losses = training_loss(model, "titanx_1", rays[r], cands)
        mine = training_loss(model, "titanx_1", rays[r], [model.space.to_choices(c)])[0]
        assert mine == pytest.approx(losses.min(), abs=1e-6)
        improved += mine < losses[0] - 1e-6
    assert improved > 0  # a short run's argmax is not the best of its own distribution


def test_pick_agrees_with_the_front_and_argmax_is_the_plain_hypernetwork(model):
    emb, lat = model.embedding(device="gold_6240")
    front = model.front(emb, lat, n_rays=6)
    for entry in front:
        one = model.pick(emb, entry.preference, lat)
        assert (one.spec, one.choices) == (entry.spec, entry.choices)
        assert one.predicted_latency_ms == pytest.approx(entry.predicted_latency_ms, rel=1e-5)
    logits = model.logits(emb, preference_rays(6))
    assert [list(e.choices) for e in model.front(emb, lat, n_rays=6, decode=ARGMAX)] == logits.argmax(-1).tolist()


@pytest.mark.parametrize("bad", [dict(samples=-1), dict(samples=1.5), dict(temperature=0), dict(temperature=float("nan")), dict(radius=0),
                                 dict(seed=-2)])
def test_bad_decode_settings_are_refused(bad):
    with pytest.raises(ConfigError, match="decode"):
        DecodeSettings(**bad)
    with pytest.raises(ConfigError, match="unknown decoding 'best'"):
        decode_settings("best")


def test_neighbours_differ_in_one_to_radius_layers(model):
    sel = model.selector()
    start = np.array([0, 1, 2, 3, 4, 0])
    for radius, count in ((1, 24), (2, 24 + 15 * 16), (3, 24 + 15 * 16 + 20 * 64)):
        nbrs = sel.neighbours(start, radius)
        changed = (nbrs != start).sum(axis=1)
        assert len(nbrs) == count == len(np.unique(nbrs, axis=0))
        assert changed.min() == 1 and changed.max() == radius
