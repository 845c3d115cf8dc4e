"""FID on images of any kind: pytorch-fid's InceptionV3 (the TensorFlow FID network ported to PyTorch), built here
layer for layer so that the weights file pytorch-fid uses (``pt_inception-2015-12-05-6726825d.pth``, which the user
supplies; nothing is ever downloaded) loads into it with ``torch.load(weights_only=True)``.

Features are the 2,048 maps of the last average pool; images are resized to 299x299 (bilinear) and given in [-1, 1]
as pytorch-fid gives them after its normalisation; grey images are repeated over the three channels. The distance is
``ebgan_core.table1.scoring.frechet_distance`` between the Gaussians of two feature sets.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ebgan_core.data import sha256_file

FEATURES = 2048
INPUT_SIDE = 299
FID_BATCH = 50  # images through the network at once


class FidWeightsError(ValueError):
    """A weights file that cannot serve; the message names the problem and the fix."""


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU: torchvision's Inception block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)  # FID's, not torchvision's


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)), double,
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = layer(seven)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """FID's last two blocks: the first pools by average (without the padding), the second by maximum."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(single), self.branch3x3_2b(single),
                          self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double), self.branch_pool(pooled)], 1)


class FidInceptionV3(nn.Module):
    """pytorch-fid's ``fid_inception_v3()``: torchvision's Inception3 (1,008 classes, no auxiliary logits) with FID's
    blocks, under the same parameter names; ``forward`` gives the 2,048 pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, 1008)  # in the weights file; the features are taken before it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> features [N, 2048]."""
        x = F.interpolate(images, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, kernel_size=3, stride=2)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def load_fid_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict of a pytorch-fid weights file and its sha256, checked: a file named as torch hub names its
    files (``...-<first 8+ hex digits of its sha256>.pth``, as pytorch-fid's) must match that prefix, and the tensors
    must fit ``FidInceptionV3``; anything else is a one-line ``FidWeightsError``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FidWeightsError(f"FID weights {path} not found; fix: pass --fid-weights the file pytorch-fid uses "
                              "(pt_inception-2015-12-05-6726825d.pth)")
    sha = sha256_file(path)
    named = re.search(r"-([0-9a-f]{8,64})\.pth?$", path.name)
    if named and not sha.startswith(named.group(1)):
        raise FidWeightsError(f"FID weights {path.name}: sha256 {sha[:12]}... does not start with the {named.group(1)} "
                              "its name promises (a corrupt or partial copy); fix: copy the file again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FidWeightsError(f"FID weights {path} do not load as plain tensors ({type(exc).__name__}); fix: pass "
                              "pytorch-fid's state dict file") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FidWeightsError(f"FID weights {path} are not a state dict of tensors; fix: pass pytorch-fid's file")
    try:
        FidInceptionV3().load_state_dict(state)
    except RuntimeError as exc:
        raise FidWeightsError(f"FID weights {path} do not fit pytorch-fid's InceptionV3 "
                              f"({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}); "
                              "fix: pass pytorch-fid's pt_inception weights") from None
    return state, sha


def fid_network(state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> FidInceptionV3:
    """The network with ``state`` loaded, in eval mode, on ``device``."""
    network = FidInceptionV3()
    network.load_state_dict(state)
    return network.eval().to(device)


@torch.no_grad()
def fid_features(network: FidInceptionV3, images: torch.Tensor, channels: int) -> torch.Tensor:
    """Images [N, channels * S * S] (or [N, C, S, S]) in [-1, 1] -> float64 features [N, 2048], in batches."""
    device = next(network.parameters()).device
    side = math.isqrt(images[0].numel() // channels)
    square = images.reshape(-1, channels, side, side)
    parts = []
    for start in range(0, len(square), FID_BATCH):
        batch = square[start : start + FID_BATCH].to(device, torch.float32)
        parts.append(network(batch.expand(-1, 3, -1, -1) if channels == 1 else batch).double().cpu())
    return torch.cat(parts)


def statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of features [N, 2048]."""
    return features.mean(0).numpy(), torch.cov(features.T).numpy()


class FidScorer:
    """FID of generated images against a reference set's feature statistics (an image folder's)."""

    def __init__(self, network: FidInceptionV3, mean: np.ndarray, cov: np.ndarray) -> None:
        self.network, self.mean, self.cov = network, torch.from_numpy(mean), torch.from_numpy(cov)

    def score(self, images: torch.Tensor, channels: int) -> dict[str, object]:
        """FID of images [N, channels * S * S] in [-1, 1] against the reference, with the sample count."""
        from ebgan_core.table1.scoring import frechet_distance

        features = fid_features(self.network, images, channels)
        mean, cov = statistics(features)
        return {"n_samples": len(features), "frechet_distance": frechet_distance(
            torch.from_numpy(mean), torch.from_numpy(cov), self.mean, self.cov)}
