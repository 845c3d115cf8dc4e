"""A sweep on a folder of images (``--images DIR``): the folder decoded at its configs' image size, the configs set to
its data and channels, and what the workers and the sweep's stored settings get of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ebgan_core.image_folder import ImageFolder, load_image_folder
from ebgan_core.table1.config import TrialConfig

LISTING_KEY = "images_listing_sha256"  # in a sweep's stored settings: the listing its configs were trained on


@dataclass(frozen=True)
class FolderData:
    """An image folder as a sweep uses it."""

    folder: ImageFolder

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
                "image_count": len(self.folder.images)}

    @property
    def inputs(self) -> dict[str, Any]:
        """The workers' training images in place of MNIST (uint8 [N, C, S, S]; the ``_sha`` key names them)."""
        return {"images": self.folder.images, "images_sha": self.folder.listing_sha256}


def on_image_folder(configs: Sequence[Any], folder: str) -> FolderData:
    """The folder decoded for ``configs``: convolutional Table 1 configs of one image size, at most as many per batch
    as the folder has images; anything else is a one-line ValueError."""
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
    return data
