"""The judge: shipped weights reach >= 99% on real MNIST; training is deterministic; bad files are refused."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from ebgan_core.table1 import classifier
from ebgan_core.table1.classifier import ClassifierFileError, load_classifier


def test_shipped_weights_reach_99_percent_on_the_test_set(mnist_test):
    model, metadata = load_classifier()
    images, labels = mnist_test
    measured = classifier.accuracy(model, images, labels)
    assert measured >= 0.99
    assert measured == pytest.approx(metadata["test_accuracy"], abs=1e-4)
    assert metadata["data_sha256"] == classifier.mnist_checksum()
    assert metadata["weights_sha256"] == classifier.weights_sha256(model.state_dict())


def test_training_is_deterministic_and_learns(tmp_path):
    kwargs = {"epochs": 1, "batch_size": 64, "train_limit": 3200, "seed": 7}
    model_a, meta_a = classifier.train_classifier(**kwargs)
    _, meta_b = classifier.train_classifier(**kwargs)
    assert meta_a["weights_sha256"] == meta_b["weights_sha256"]
    assert meta_a["test_accuracy"] > 0.8, "50 steps on 3,200 images already beat chance by far"
    path = tmp_path / "judge.pt"
    classifier.save_classifier(model_a, meta_a, path)
    loaded, meta = load_classifier(path)
    assert meta == meta_a
    for name, tensor in model_a.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def _rewrite(path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def test_tampered_weights_are_refused(tmp_path):
    path = tmp_path / "judge.pt"
    path.write_bytes(classifier.SHIPPED_WEIGHTS.read_bytes())
    load_classifier(path)  # an intact copy loads

    def nudge(payload):
        payload["state_dict"]["readout.bias"][0] += 1e-3

    _rewrite(path, nudge)
    with pytest.raises(ClassifierFileError, match="do not match the sha256 in their metadata"):
        load_classifier(path)


def test_corrupt_missing_foreign_and_malicious_files_are_refused(tmp_path):
    with pytest.raises(ClassifierFileError, match="not found"):
        load_classifier(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(classifier.SHIPPED_WEIGHTS.read_bytes()[:10_000])
    with pytest.raises(ClassifierFileError, match="corrupt or not ours"):
        load_classifier(corrupt)
    malicious = tmp_path / "malicious.pt"
    buffer = io.BytesIO()
    torch.save({"metadata": _Exploit(), "state_dict": {}}, buffer, pickle_module=pickle)
    malicious.write_bytes(buffer.getvalue())
    with pytest.raises(ClassifierFileError, match="corrupt or not ours"):
        load_classifier(malicious)
    foreign = tmp_path / "foreign.pt"
    torch.save({"metadata": {"format_version": 99}, "state_dict": {}}, foreign)
    with pytest.raises(ClassifierFileError, match="format 99"):
        load_classifier(foreign)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))
