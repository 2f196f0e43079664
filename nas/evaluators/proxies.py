"""Zero-cost proxies: score an untrained network in one or two passes, for spaces with no table.

Both scores rank architectures (higher is better); they are not accuracies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hwprof.errors import ConfigError
from hwprof.types import Architecture
from nas.evaluators.data import ImageData, load_digits_data

if TYPE_CHECKING:
    import torch

    from hwprof.spaces import SearchSpace


def synflow_score(model: "torch.nn.Module", input_shape: tuple[int, ...]) -> float:
    """SynFlow (Tanaka et al. 2020, as a NAS proxy by Abdelfattah et al. 2021).

    In double precision, every parameter replaced by its absolute value, an
    all-ones input of one example, R = sum of the outputs; the score is
    sum over Conv2d/Linear weights of |theta * dR/dtheta|. Batch norm runs in
    eval mode, which at initialisation is the identity (the proxy is defined on
    networks without it). The model is modified in place (abs weights, double).
    """
    import torch

    model = model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if torch.is_floating_point(p):
                p.abs_()
    model.zero_grad(set_to_none=True)
    x = torch.ones((1, *tuple(input_shape)[1:]), dtype=torch.float64)
    torch.sum(model(x)).backward()
    total = 0.0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.grad is not None:
                total += float(torch.sum(torch.abs(m.weight * m.weight.grad)))
    return total


def naswot_score(model: "torch.nn.Module", x: "torch.Tensor") -> float:
    """NASWOT (Mellor et al. 2021): log|K_H| of the minibatch's ReLU activation codes.

    Each ReLU's input gives every example a binary code (unit active or not);
    K_H[i, j] sums, over all ReLUs, the number of units on which examples i and
    j agree (N_A minus the Hamming distance). -inf when K_H is singular (two
    examples the network cannot tell apart). Batch norm uses batch statistics,
    as in the authors' code (network in training mode, no gradients).
    """
    import numpy as np
    import torch

    n = x.shape[0]
    k = torch.zeros((n, n), dtype=torch.float64)

    def hook(module, inputs) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
        k.add_(codes @ codes.T).add_((1.0 - codes) @ (1.0 - codes).T)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = np.linalg.slogdet(k.numpy())
    return float(logdet) if sign > 0 else -math.inf


class SynflowEvaluator:
    """SynFlow score of the architecture built with a fixed seed (data-free)."""

    unit = "score"
    name = "proxy:synflow"

    def __init__(self, space: "SearchSpace", seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    def evaluate(self, arch: Architecture) -> float:
        import torch

        with torch.random.fork_rng(devices=[]):
            model = self.space.build(arch, seed=self.seed)
            return synflow_score(model, tuple(self.space.input_shape))


class NaswotEvaluator:
    """NASWOT score on a fixed minibatch (digits resized to the space's input, or your images)."""

    unit = "score"
    name = "proxy:naswot"

    def __init__(self, space: "SearchSpace", data: ImageData | str = "digits", batch_size: int = 64, seed: int = 0) -> None:
        if isinstance(data, str) and data != "digits":
            raise ConfigError(f"unknown proxy data {data!r}; expected 'digits' or an ImageData of your tensors")
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ConfigError(f"NASWOT needs a minibatch of at least 2 examples, got batch_size={batch_size!r}")
        self.space = space
        self.data_spec = data
        self.batch_size = batch_size
        self.seed = seed
        self._batch: "torch.Tensor | None" = None

    @property
    def batch(self) -> "torch.Tensor":
        if self._batch is None:
            import torch

            data = load_digits_data(self.space.input_shape, seed=self.seed) if isinstance(self.data_spec, str) else self.data_spec
            want = tuple(self.space.input_shape)[1:]
            if data.image_shape != want:
                raise ConfigError(f"{data.name} images have shape {data.image_shape}; the space builds networks for {want}")
            if data.x_train.shape[0] < self.batch_size:
                raise ConfigError(f"{data.name} has {data.x_train.shape[0]} training images; NASWOT needs batch_size={self.batch_size}")
            g = torch.Generator().manual_seed(self.seed)
            idx = torch.randperm(data.x_train.shape[0], generator=g)[: self.batch_size]
            self._batch = data.x_train[idx]
        return self._batch

    def evaluate(self, arch: Architecture) -> float:
        import torch

        with torch.random.fork_rng(devices=[]):
            model = self.space.build(arch, seed=self.seed)
            return naswot_score(model, self.batch)
