"""A sweep on a folder of images (``--images DIR``): the folder decoded at its configs' image size, the configs set to
its data and channels, and what the workers and the sweep's stored settings get of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebgan_core.data import default_cache_dir, to_signed_unit
from ebgan_core.fid import FID_BATCH, fid_features, fid_network, load_fid_weights, statistics
from ebgan_core.files import write_atomically
from ebgan_core.image_folder import ImageFolder, image_files, listing_sha256, load_image_folder
from ebgan_core.progress import progress_bar
from ebgan_core.table1.config import TrialConfig
from sweeps.store.result_store import LISTING_KEY

FID_REFERENCE_IMAGES = 10_000  # of the folder behind its FID statistics (evenly spaced over the listing)


@dataclass(frozen=True)
class FolderData:
    """An image folder as a sweep uses it, with the FID weights and the folder's feature statistics, if given."""

    folder: ImageFolder
    fid: dict[str, Any] | None = None  # fid_state, fid_sha, fid_mean, fid_cov: the workers' FID inputs

    @property
    def dataset(self) -> str:
        """The configs' ``dataset``: it enters their hash, so a changed folder never resumes old runs."""
        return f"folder-{self.folder.listing_sha256}"

    @property
    def channels(self) -> int:
        return self.folder.channels

    @property
    def details(self) -> dict[str, Any]:
        """What the sweep's settings record of the folder."""
        return {"images": str(self.folder.path), LISTING_KEY: self.folder.listing_sha256,
                "image_count": len(self.folder.images), "fid_weights_sha256": self.fid and self.fid["fid_sha"]}

    @property
    def inputs(self) -> dict[str, Any]:
        """The workers' training images in place of MNIST (uint8 [N, C, S, S]; the ``_sha`` key names them)."""
        return {"images": self.folder.images, "images_sha": self.folder.listing_sha256, **(self.fid or {})}


def folder_listing(folder: str) -> str:
    """The sha256 of ``folder``'s listing, without decoding it (a sweep checks it against the stored one first)."""
    path = Path(folder).expanduser().resolve()
    return listing_sha256(path, image_files(path))


def on_image_folder(configs: Sequence[Any], folder: str, fid_weights: str | None = None) -> FolderData:
    """The folder decoded for ``configs``: convolutional Table 1 configs of one image size, at most as many per batch
    as the folder has images; anything else is a one-line ValueError. With ``fid_weights`` (pytorch-fid's file), the
    folder's FID statistics too (``reference_statistics``)."""
    if not all(isinstance(c, TrialConfig) and c.architecture == "conv" for c in configs):
        raise ValueError("--images trains convolutional configs only; fix: use --grid images, images-presets, or a "
                         "grid file of architecture conv")
    sizes = sorted({c.image_size for c in configs})
    if len(sizes) > 1:
        raise ValueError(f"--images decodes the folder at one image size; the configs have {sizes}; fix: run one "
                         "sweep per size")
    data = FolderData(load_image_folder(folder, sizes[0]))
    batch = max(c.batch_size for c in configs)
    if len(data.folder.images) < batch:
        raise ValueError(f"image folder {data.folder.path} holds {len(data.folder.images)} images, fewer than a batch "
                         f"of {batch}; fix: add images (or lower batch_size in a grid file)")
    if fid_weights is None:
        return data
    state, sha = load_fid_weights(fid_weights)
    mean, cov = reference_statistics(data.folder, state, sha)
    return FolderData(data.folder, {"fid_state": state, "fid_sha": sha, "fid_mean": mean, "fid_cov": cov})


def reference_statistics(folder: ImageFolder, state: dict[str, Any], sha: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the FID features of up to ``FID_REFERENCE_IMAGES`` of the folder's images, cached beside
    the decoded images by (listing, weights, size)."""
    size = folder.images.shape[-1]
    cache = default_cache_dir() / "images" / f"{folder.listing_sha256}-{size}-fid-{sha[:16]}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return saved["mean"], saved["cov"]
    count = len(folder.images)
    chosen = np.linspace(0, count - 1, min(count, FID_REFERENCE_IMAGES)).round().astype(int)
    network, channels = fid_network(state, "cuda" if torch.cuda.is_available() else "cpu"), folder.channels
    bar = progress_bar(len(chosen), "FID statistics of the folder", unit="image")
    features = []
    for start in range(0, len(chosen), FID_BATCH):
        part = chosen[start : start + FID_BATCH]
        features.append(fid_features(network, to_signed_unit(folder.images[part]), channels))
        bar.update(len(part))
    bar.close()
    mean, cov = statistics(torch.cat(features))
    write_atomically(cache, lambda handle: np.savez(handle, mean=mean, cov=cov))
    return mean, cov
