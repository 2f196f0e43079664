"""The hypernetwork H(device embedding, preference) -> architecture logits, one row per layer.

Generic over any ``SearchSpace``: the output is (layers, widest layer's
options); options a layer does not have are masked. The last linear layer
starts at zero, so an untrained hypernetwork proposes the uniform
distribution for every device and preference (no initial bias towards any
architecture).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from hwprof.errors import ConfigError, DataError
from nas.search.modnas.sampling import MASK_LOGIT
from nas.search.modnas.surrogates import _check_hidden, mlp

PREF_FLOOR = 1e-3  # log-preference features are clipped here so a zero weight stays finite


class HyperNetwork(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        layer_sizes: Sequence[int],
        n_objectives: int = 2,
        hidden: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in layer_sizes]
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"HyperNetwork: expected one positive option count per layer, got {list(layer_sizes)}")
        if int(embed_dim) < 1 or int(n_objectives) < 2:
            raise ConfigError(f"HyperNetwork: embed_dim must be >= 1 and n_objectives >= 2, got {embed_dim}, {n_objectives}")
        self.embed_dim = int(embed_dim)
        self.layer_sizes = tuple(sizes)
        self.n_objectives = int(n_objectives)
        self.hidden = _check_hidden("HyperNetwork", hidden)
        self.width = max(sizes)
        self.net = mlp(self.embed_dim + 2 * self.n_objectives, self.hidden, len(sizes) * self.width)
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        mask = torch.zeros(len(sizes), self.width, dtype=torch.bool)
        for i, s in enumerate(sizes):
            mask[i, s:] = True
        self.register_buffer("mask", mask, persistent=False)
        layer_idx = [i for i, s in enumerate(sizes) for _ in range(s)]
        opt_idx = [k for s in sizes for k in range(s)]
        self.register_buffer("enc_flat_index", torch.tensor([i * self.width + k for i, k in zip(layer_idx, opt_idx)]), persistent=False)

    @property
    def encoding_width(self) -> int:
        return sum(self.layer_sizes)

    def config(self) -> dict:
        return {"embed_dim": self.embed_dim, "layer_sizes": list(self.layer_sizes),
                "n_objectives": self.n_objectives, "hidden": list(self.hidden)}

    def features(self, emb: torch.Tensor, pref: torch.Tensor) -> torch.Tensor:
        return torch.cat([emb, pref, torch.log(pref.clamp_min(PREF_FLOOR))], dim=-1)

    def forward(self, emb: torch.Tensor, pref: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim), (B, n_objectives) -> logits (B, layers, width), padded options at MASK_LOGIT."""
        if emb.ndim != 2 or emb.shape[1] != self.embed_dim:
            raise DataError(f"expected device embeddings of shape (n, {self.embed_dim}), got {tuple(emb.shape)}")
        if pref.ndim != 2 or pref.shape != (emb.shape[0], self.n_objectives):
            raise DataError(f"expected preferences of shape ({emb.shape[0]}, {self.n_objectives}), got {tuple(pref.shape)}")
        out = self.net(self.features(emb, pref)).reshape(-1, len(self.layer_sizes), self.width)
        return out.masked_fill(self.mask, MASK_LOGIT)

    def encoding(self, onehot: torch.Tensor) -> torch.Tensor:
        """(..., layers, width) per-layer (relaxed) one-hots -> (..., encoding_width) in the space's layout."""
        flat = onehot.reshape(*onehot.shape[:-2], len(self.layer_sizes) * self.width)
        return flat.index_select(-1, self.enc_flat_index)

    @staticmethod
    def choices(logits: torch.Tensor) -> np.ndarray:
        """Most likely option per layer: (B, layers) integer array."""
        return logits.argmax(dim=-1).cpu().numpy()
