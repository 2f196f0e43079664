"""Small offline image data for training and proxy evaluators: scikit-learn's bundled digits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from hwprof.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageData:
    """Train/validation tensors: images (n, c, h, w) float32, labels (n,) int64."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    num_classes: int
    name: str = "tensors"

    def __post_init__(self) -> None:
        for part, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if x.ndim != 4:
                raise DataError(f"{self.name}: x_{part} must have shape (n, c, h, w), got {tuple(x.shape)}")
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise DataError(f"{self.name}: y_{part} must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            if x.shape[0] == 0:
                raise DataError(f"{self.name}: x_{part} is empty; expected at least one example")
        if tuple(self.x_train.shape[1:]) != tuple(self.x_val.shape[1:]):
            raise DataError(
                f"{self.name}: train images {tuple(self.x_train.shape[1:])} and val images "
                f"{tuple(self.x_val.shape[1:])} differ; expected the same (c, h, w)"
            )
        top = int(max(self.y_train.max(), self.y_val.max()))
        if int(min(self.y_train.min(), self.y_val.min())) < 0 or top >= self.num_classes:
            raise DataError(f"{self.name}: labels must be in 0..{self.num_classes - 1}, got up to {top}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @classmethod
    def from_tensors(cls, x_train, y_train, x_val, y_val, num_classes: int | None = None, name: str = "tensors") -> "ImageData":
        """User data (anything ``torch.as_tensor`` accepts); ``num_classes`` defaults to max label + 1."""
        import torch

        xt, xv = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(x_val, dtype=torch.float32)
        yt, yv = torch.as_tensor(y_train, dtype=torch.int64), torch.as_tensor(y_val, dtype=torch.int64)
        n = num_classes if num_classes is not None else int(max(yt.max(), yv.max())) + 1
        return cls(xt, yt, xv, yv, n, name)


def load_digits_data(input_shape: Sequence[int], val_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's 1,797 8x8 digits, resized to ``input_shape`` ((n,) c, h, w) and standardised.

    The 8x8 images are upsampled bilinearly to h x w and repeated over c
    channels; the split is a fixed permutation of ``seed``; mean and std come
    from the training part.
    """
    import numpy as np
    import torch

    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ConfigError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    shape = tuple(int(s) for s in input_shape)[-3:]
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"expected an image input shape (c, h, w) or (n, c, h, w), got {tuple(input_shape)}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    c, h, w = shape
    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if (h, w) != (8, 8):
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    x = x.repeat(1, c, 1, 1)
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(len(y)))
    n_val = int(round(len(y) * val_fraction))
    val, train = perm[:n_val], perm[n_val:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return ImageData(x[train].contiguous(), y[train], x[val].contiguous(), y[val], 10, "digits")
