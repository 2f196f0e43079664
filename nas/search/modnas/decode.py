"""From hypernetwork logits to one architecture per (device, preference): argmax, or select by the surrogates.

The hypernetwork's answer is a distribution over architectures (one softmax
per edge). Its most likely architecture is often not the best one the
surrogates it was trained on know near it: training moves each ray's
distribution along the surrogates' gradient and, once it has collapsed
(entropy bonus off, low temperature), it stays on whatever network it holds
then. Measured on the benchmark's split with the default training: the
preference-1.0 argmax is 0.76-2.08 points below the most accurate network on
every device for seeds 0-2, although the surrogates rank networks a few edges
away higher (docs/modnas.md).

``DecodeSettings`` with ``samples > 0`` or ``local_search`` adds a final
decode-and-select step scored by the training objective itself: the same
frozen surrogates, the same per-device normalisation and the same
scalarisation of the ray's preference. Candidates are the argmax and
``samples`` draws from the ray's distribution (a generator seeded per ray,
so ``pick`` and ``front`` agree); from the best of them a hill-climb moves
to the best network that differs in 1 to ``radius`` edges until none
improves. ``ARGMAX`` (no samples, no local search) is the plain hypernetwork
answer; supernet mode has no accuracy surrogate and always decodes by argmax.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from hwprof.errors import ConfigError
from nas.search.modnas.objectives import NormalisedLatency, SurrogateError, predict_in_batches, scalarise

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace
    from nas.search.modnas.surrogates import AccuracySurrogate, LatencySurrogate

MAX_ENUMERATED = 1_000_000  # the normalisation ranges are taken over the whole space: enumerate at most this many
MAX_CLIMB_ROUNDS = 50  # a hill-climb that has not stopped by then stops here (each round strictly improves)


@dataclass(frozen=True)
class DecodeSettings:
    """How a ray's logits become one architecture (see the module docstring).

    ``samples``: draws from softmax(logits / ``temperature``) scored besides the
    argmax; ``local_search``: hill-climb from the best candidate, each round
    moving to the best network that differs in 1 to ``radius`` layers (3 was
    chosen on the benchmark's train and validation devices: at 1 and 2 the
    climb of a badly trained seed stops 2.4 and 0.7 points below the most
    accurate network; docs/modnas.md); ``seed``: the per-ray generator's seed.
    """

    samples: int = 64
    temperature: float = 1.0
    local_search: bool = True
    radius: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 0:
            raise ConfigError(f"decode: samples must be an integer >= 0, got {self.samples!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"decode: temperature must be a finite number > 0, got {t!r}")
        if isinstance(self.radius, bool) or not isinstance(self.radius, int) or self.radius < 1:
            raise ConfigError(f"decode: radius must be an integer >= 1, got {self.radius!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"decode: seed must be an integer >= 0, got {self.seed!r}")

    @property
    def is_argmax(self) -> bool:
        return self.samples == 0 and not self.local_search


ARGMAX = DecodeSettings(samples=0, local_search=False)
DECODES = {"select": DecodeSettings(), "argmax": ARGMAX}


def decode_settings(name: str) -> DecodeSettings:
    """``"select"`` (the default decoding) or ``"argmax"``; anything else is a ConfigError."""
    try:
        return DECODES[name]
    except KeyError:
        raise ConfigError(f"unknown decoding {name!r}; expected one of {', '.join(DECODES)}") from None


def all_choices(layer_sizes: Sequence[int]) -> np.ndarray:
    """Every architecture of a layered space as a (n, layers) choice array (the space must be small enough)."""
    n = math.prod(int(s) for s in layer_sizes)
    if n > MAX_ENUMERATED:
        raise ConfigError(f"decode: the space has {n} architectures; selecting by the surrogates needs at most {MAX_ENUMERATED}")
    return np.asarray(list(itertools.product(*(range(int(s)) for s in layer_sizes))), dtype=np.int64)


class SurrogateSelector:
    """Scores architectures for a device and preference exactly as training does, and decodes rays with it."""

    def __init__(
        self,
        space: "SearchSpace",
        layer_sizes: Sequence[int],
        accuracy: "AccuracySurrogate",
        latency: "LatencySurrogate",
        scale: str,
        scalarisation: str,
    ) -> None:
        self.space = space
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        self.latency = latency
        self.scalarisation = scalarisation
        self.scale = scale
        self.space_enc = self._encode(all_choices(self.layer_sizes))
        self.error = SurrogateError(accuracy, self.space_enc, scale)

    def _encode(self, choices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.space.encode_choices(choices))

    def device(self, embedding: np.ndarray) -> "_DeviceScorer":
        emb = torch.from_numpy(np.asarray(embedding, dtype=np.float32))[None]
        z = predict_in_batches(self.latency, self.space_enc, emb)
        return _DeviceScorer(self, emb, float(z.min()), float(z.max()))

    def decode(self, embedding: np.ndarray, logits: torch.Tensor, prefs: np.ndarray, settings: DecodeSettings) -> np.ndarray:
        """(rays, layers) choices: per ray the best candidate under that ray's scalarised surrogates."""
        scorer = self.device(embedding)
        out = []
        for lg, pref in zip(logits, prefs):
            lg = lg[:, : max(self.layer_sizes)].double()
            cands = [lg.argmax(dim=-1).numpy()]
            if settings.samples:
                probs = torch.softmax(lg / settings.temperature, dim=-1)
                gen = torch.Generator().manual_seed(settings.seed)
                cands.extend(torch.multinomial(probs, settings.samples, replacement=True, generator=gen).T.numpy())
            p = torch.as_tensor(pref, dtype=torch.float64)
            cands_arr = np.unique(np.stack(cands), axis=0)
            scores = scorer(cands_arr, p)
            best, best_score = cands_arr[int(np.argmin(scores))], float(scores.min())
            for _ in range(MAX_CLIMB_ROUNDS if settings.local_search else 0):
                nbrs = self.neighbours(best, settings.radius)
                s = scorer(nbrs, p)
                if float(s.min()) >= best_score:
                    break
                best, best_score = nbrs[int(np.argmin(s))], float(s.min())
            out.append(best)
        return np.stack(out)

    def neighbours(self, choices: np.ndarray, radius: int = 1) -> np.ndarray:
        """Every architecture that differs from ``choices`` in 1 to ``radius`` layers."""
        rows = []
        for k in range(1, min(radius, len(self.layer_sizes)) + 1):
            for layers in itertools.combinations(range(len(self.layer_sizes)), k):
                others = [[o for o in range(self.layer_sizes[i]) if o != choices[i]] for i in layers]
                for options in itertools.product(*others):
                    row = choices.copy()
                    row[list(layers)] = options
                    rows.append(row)
        return np.stack(rows)


class _DeviceScorer:
    def __init__(self, selector: SurrogateSelector, emb: torch.Tensor, z_min: float, z_max: float) -> None:
        self.selector, self.emb, self.z_min, self.z_max = selector, emb, z_min, z_max

    def objectives(self, choices: np.ndarray) -> torch.Tensor:
        """(n, 2) normalised (error, latency), as the training objectives."""
        sel = self.selector
        enc = sel._encode(np.asarray(choices, dtype=np.int64))
        with torch.no_grad():
            err = sel.error.normalise(sel.error.model(enc))
            lat = NormalisedLatency.normalise(sel.latency(enc, self.emb), self.z_min, self.z_max, sel.scale)
        return torch.stack([err, lat], dim=-1).double()

    def __call__(self, choices: np.ndarray, pref: torch.Tensor) -> np.ndarray:
        return scalarise(self.objectives(choices), pref, self.selector.scalarisation).numpy()
