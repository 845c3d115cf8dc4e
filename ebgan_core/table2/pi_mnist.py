"""Permutation-invariant MNIST for the semi-supervised study: flat 28x28 images (unpadded, Appendix D) in [0, 1],
and the balanced labelled subsets drawn by a seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ebgan_core.data import load_mnist_uint8
from ebgan_core.rng import derive_seed


@dataclass(frozen=True)
class PiMnist:
    """Training and test images [N, 784] float32 in [0, 1] with their labels [N] int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> PiMnist:
        """On ``device``, images in ``dtype``."""
        return PiMnist(self.train_images.to(device, dtype), self.train_labels.to(device),
                       self.test_images.to(device, dtype), self.test_labels.to(device))


def load_pi_mnist(source: str | Path | None = None) -> PiMnist:
    """MNIST from the same verified source as Table 1's (``ebgan_core.data``), flattened and scaled to [0, 1]."""
    return pi_mnist_from_arrays(load_mnist_uint8(source))


def pi_mnist_from_arrays(arrays: dict[str, np.ndarray]) -> PiMnist:
    """``load_mnist_uint8``'s four arrays, flattened and scaled to [0, 1]."""

    def flat(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        # astype copies: arrays from Ray's object store are read-only
        images = arrays[f"{split}_images"].reshape(-1, 28 * 28).astype(np.float32) / 255.0
        return torch.from_numpy(images), torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))

    return PiMnist(*flat("train"), *flat("test"))


def labelled_indices(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` training indices, count/10 of each class, drawn by ``seed`` (the same for any group or machine)."""
    if count % 10 or count < 10:
        raise ValueError(f"the labelled count must be a positive multiple of 10 (balanced classes), got {count}")
    rng = np.random.default_rng(derive_seed("labelled", seed, count))
    labels_np = labels.cpu().numpy()
    picks = []
    for digit in range(10):
        members = np.flatnonzero(labels_np == digit)
        if len(members) < count // 10:
            raise ValueError(f"class {digit} has only {len(members)} images; cannot take {count // 10}")
        picks.append(rng.choice(members, size=count // 10, replace=False))
    return torch.from_numpy(np.sort(np.concatenate(picks)))
