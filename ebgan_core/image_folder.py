"""A folder of images as training data: PNG or JPEG files, decoded once into a memory-mapped uint8 cache.

``load_image_folder(folder, size)`` lists the folder (its subfolders too; hidden files are skipped), checksums the
listing (each file's relative path, size and modification time: a changed, added or removed file changes it), and
decodes every image, centre-cropped to a square and resized to ``size`` x ``size`` (Lanczos), into
``<cache>/images/<listing sha256>-<size>.npy``: uint8 [N, C, size, size], grey (C = 1) where every image is grey, RGB
(C = 3) otherwise. Later calls with the same listing read that file memory-mapped, without decoding. A folder that
cannot serve (missing, empty, a file that is not a PNG or JPEG, an image that does not decode) is a one-line
``ImageFolderError`` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ebgan_core.data import default_cache_dir
from ebgan_core.progress import progress_bar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL's modes of images without colour


class ImageFolderError(ValueError):
    """An image folder that cannot serve as training data; the message names the problem and the fix."""


@dataclass(frozen=True)
class ImageFolder:
    """A decoded image folder: its images and the checksum of the listing they were decoded from."""

    path: Path
    images: np.ndarray  # uint8 [N, C, size, size], memory-mapped from the cache
    listing_sha256: str

    @property
    def channels(self) -> int:
        return self.images.shape[1]


def image_files(folder: Path) -> list[Path]:
    """The folder's image files, sorted by relative path; anything else but hidden files is an error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ImageFolderError(f"image folder {folder} not found (or not a directory); fix: pass --images a directory "
                               "of PNG or JPEG files")
    files, others = [], []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        (files if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    if others:
        raise ImageFolderError(f"image folder {folder} holds {len(others)} file(s) that are not PNG or JPEG, the first "
                               f"{others[0].relative_to(folder)}; fix: move them out of the folder")
    if not files:
        raise ImageFolderError(f"image folder {folder} holds no PNG or JPEG files; fix: pass --images a directory of "
                               "them")
    return files


def listing_sha256(folder: Path, files: list[Path]) -> str:
    """sha256 of the listing: each file's path relative to ``folder``, size in bytes and modification time (ns)."""
    entries = []
    for path in files:
        status = path.stat()
        entries.append([path.relative_to(folder).as_posix(), status.st_size, status.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


def _open(path: Path, folder: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageFolderError(f"cannot read image {path.relative_to(folder)} in {folder} ({type(exc).__name__}); "
                               "fix: remove it or save it again as PNG or JPEG") from None


def square(image: Image.Image, size: int) -> Image.Image:
    """The image's centre square, resized to ``size`` x ``size`` (Lanczos)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def _decode_into(target: Path, files: list[Path], folder: Path, size: int, channels: int) -> None:
    """Decode every file into a new .npy array at ``target`` (written beside it, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(handle)
    try:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8,
                                          shape=(len(files), channels, size, size))
        mode = "L" if channels == 1 else "RGB"
        bar = progress_bar(len(files), f"decoding {folder.name} to {size}x{size}", unit="image")
        for index, path in enumerate(files):
            with _open(path, folder) as image:
                try:
                    pixels = np.asarray(square(image.convert(mode), size))
                except OSError as exc:  # a truncated or corrupt file fails only when decoded
                    raise ImageFolderError(f"cannot decode image {path.relative_to(folder)} in {folder} "
                                           f"({type(exc).__name__}); fix: remove it or save it again") from None
            array[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
            bar.update()
        bar.close()
        array.flush()
        del array
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def load_image_folder(folder: str | Path, size: int, cache_dir: Path | None = None) -> ImageFolder:
    """The images of ``folder`` at ``size`` x ``size``, from the cache of its listing (decoded there first if absent;
    see the module's docstring)."""
    folder = Path(folder).expanduser().resolve()
    files = image_files(folder)
    sha = listing_sha256(folder, files)
    target = (cache_dir or default_cache_dir()) / "images" / f"{sha}-{size}.npy"
    if not target.exists():
        grey = True
        for path in files:
            with _open(path, folder) as image:  # reads the header only
                grey &= image.mode in GREY_MODES
        _decode_into(target, files, folder, size, 1 if grey else 3)
    return ImageFolder(folder, np.load(target, mmap_mode="r"), sha)
