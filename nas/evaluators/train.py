"""Accuracy by really training the candidate network for a few epochs on small data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwprof.errors import ConfigError
from hwprof.types import Architecture
from nas.evaluators.data import ImageData, load_digits_data

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace


class TrainEvaluator:
    """Validation accuracy (%) after ``epochs`` of SGD from a seeded initialisation.

    ``space`` builds the network that is trained: use a small configuration
    (e.g. ``NB201Space(channels=8, cells_per_stage=1, num_classes=10)``) so one
    evaluation takes seconds; the architecture spec is the same as in the
    full-size space the costs refer to. Deterministic for a fixed seed on one
    machine (single-threaded CPU kernels are used for the duration of a call).
    """

    unit = "%"

    def __init__(
        self,
        space: "SearchSpace",
        data: ImageData | str = "digits",
        epochs: int = 3,
        batch_size: int = 64,
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        seed: int = 0,
    ) -> None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(data, str) and data != "digits":
            raise ConfigError(f"unknown training data {data!r}; expected 'digits' or an ImageData of your tensors")
        self.space = space
        self.data_spec = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.seed = seed
        self.name = f"train:{data if isinstance(data, str) else data.name}"
        self._data: ImageData | None = None

    @property
    def data(self) -> ImageData:
        if self._data is None:
            if isinstance(self.data_spec, str):
                self._data = load_digits_data(self.space.input_shape, seed=self.seed)
            else:
                self._data = self.data_spec
            want = tuple(self.space.input_shape)[1:]
            if self._data.image_shape != want:
                raise ConfigError(
                    f"{self._data.name} images have shape {self._data.image_shape}; the space builds networks for {want}"
                )
        return self._data

    def evaluate(self, arch: Architecture) -> float:
        import torch

        data = self.data
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = self.space.build(arch, seed=self.seed)
                self._check_outputs(model, data)
                self._train(model, data)
                return self._accuracy(model, data)
        finally:
            torch.set_num_threads(threads)

    def _check_outputs(self, model, data: ImageData) -> None:
        import torch

        model.eval()
        with torch.no_grad():
            out = model(data.x_val[:2])
        if out.ndim != 2 or out.shape[1] != data.num_classes:
            raise ConfigError(
                f"{self.space.name} networks output shape {tuple(out.shape)}; {data.name} has {data.num_classes} classes "
                f"(build the space with num_classes={data.num_classes})"
            )

    def _train(self, model, data: ImageData) -> None:
        """SGD with Nesterov momentum, weight decay and a cosine learning rate, written out.

        Same update as ``torch.optim.SGD(nesterov=True)``; written here because
        constructing a torch optimizer imports torch._dynamo (seconds on a
        small machine), more than a whole evaluation of a small network.
        """
        import math

        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            return  # nothing to train
        velocity = [torch.zeros_like(p) for p in params]
        n = data.x_train.shape[0]
        steps = self.epochs * ((n + self.batch_size - 1) // self.batch_size)
        gen = torch.Generator().manual_seed(self.seed)
        loss_fn = torch.nn.CrossEntropyLoss()
        model.train()
        step = 0
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = perm[start : start + self.batch_size]
                for p in params:
                    p.grad = None
                loss_fn(model(data.x_train[idx]), data.y_train[idx]).backward()
                lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * step / steps))
                with torch.no_grad():
                    for p, v in zip(params, velocity):
                        if p.grad is None:
                            continue
                        g = p.grad.add(p, alpha=self.weight_decay)
                        v.mul_(self.momentum).add_(g)
                        p.add_(g.add(v, alpha=self.momentum), alpha=-lr)
                step += 1

    def _accuracy(self, model, data: ImageData) -> float:
        import torch

        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, data.x_val.shape[0], 256):
                out = model(data.x_val[start : start + 256])
                correct += int((out.argmax(1) == data.y_val[start : start + 256]).sum())
        return 100.0 * correct / data.x_val.shape[0]
