"""Table 1 as a study: its grids and profiles, what every worker needs (MNIST and the pinned judge), how a worker
trains a group, and the adaptive-search space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ebgan_core.data import MNIST_ARRAY_SHA256, load_mnist_uint8, to_model_images, to_signed_unit
from ebgan_core.fid import FidScorer, fid_network
from ebgan_core.table1.classifier import MnistConvNet, load_classifier, weights_sha256
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.train import train_group
from sweeps.study import Study
from sweeps.table1 import grids, search_space


def configs(grid: str, profile: str, seeds: Sequence[int] | None, precision: str | None,
            samples: int | None = None) -> list[TrialConfig]:
    """The configs of a Table 1 grid at ``profile`` (seed 0 unless ``seeds`` says otherwise; ``samples`` per loss of
    the sampled grid ``lucic``)."""
    return grids.grid(grid, profile, (0,) if seeds is None else seeds, precision, samples)


def inputs() -> dict[str, Any]:
    """What the driver ships once to every worker: the training images (uint8) and the judge's weights."""
    judge, judge_meta = load_classifier()
    # load_mnist_uint8 has verified this content, so its known checksum names it (no re-hash of 47 MB).
    return {"images": load_mnist_uint8()["train_images"], "images_sha": MNIST_ARRAY_SHA256["train_images"],
            "judge_state": {k: v.cpu() for k, v in judge.state_dict().items()},
            "judge_sha": judge_meta["weights_sha256"]}


def prepare(images: np.ndarray, images_sha: str, judge_state: dict[str, torch.Tensor], judge_sha: str,
            device: str, fid_state: dict[str, torch.Tensor] | None = None, fid_sha: str | None = None,
            fid_mean: np.ndarray | None = None, fid_cov: np.ndarray | None = None) -> tuple[tuple[Any, ...],
                                                                                          dict[str, Any]]:
    """Inside a worker: the training arguments (images in [-1, 1]: MNIST's uint8 [N, 28, 28] padded to 32x32, or an
    image folder's uint8 [N, C, S, S] as they are; the judge on ``device``, its weights checked; an image folder's FID
    scorer where the sweep has FID weights) and what every row records of them (the sha256 of the network that scored
    it: the judge's, or the FID weights file's)."""
    judge = MnistConvNet()
    judge.load_state_dict(judge_state)
    if weights_sha256(judge.state_dict()) != judge_sha:
        raise RuntimeError("the judge's weights changed in transit (sha256 mismatch)")
    training = to_signed_unit(images) if images.ndim == 4 else to_model_images(images)
    fid = None if fid_state is None else FidScorer(fid_network(fid_state, device), fid_mean, fid_cov)
    return (training, judge.to(device), fid), {"judge_sha256": fid_sha or judge_sha}


def member_order(config: TrialConfig) -> tuple:
    """Members of one discriminator optimiser and learning rate next to each other, then by the generator's."""
    return config.optim_d, config.lr, config.optim_g


TABLE1 = Study(
    name="table1", config_type=TrialConfig, grids=grids.grid_names, profiles=grids.PROFILES, default_profile="demo",
    configs=configs, member_order=member_order, inputs=inputs, prepare=prepare,
    train=train_group, score="i_prime", higher_is_better=True, search_grids=search_space.search_grids,
    search_space=search_space.optuna_space, search_base=search_space.search_base,
)
