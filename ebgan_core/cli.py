"""`ebgan classifier ...` and `ebgan train ...`: the core's commands (registered by sweeps.cli)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ebgan_core import classifier
from ebgan_core.progress import progress_bar


def add_classifier_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `classifier train` and `classifier eval`."""
    parser = subparsers.add_parser("classifier", help="train or evaluate the MNIST judge behind I'")
    commands = parser.add_subparsers(dest="classifier_command", required=True)
    train = commands.add_parser("train", help="train the 3-layer ConvNet deterministically (about 4 min on 2 cores)")
    train.add_argument("--out", type=Path, default=Path("results/classifier/mnist_convnet.pt"))
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=_train_classifier)
    evaluate = commands.add_parser("eval", help="measure a weights file's accuracy on the 10k MNIST test images")
    evaluate.add_argument("--weights", type=Path, default=None, help="default: the shipped weights")
    evaluate.set_defaults(handler=_eval_classifier)


def _train_classifier(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise SystemExit(f"error: --epochs must be >= 1, got {args.epochs}")
    bar = progress_bar(total=1, description="classifier", unit="step")

    def on_step(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")

    model, metadata = classifier.train_classifier(epochs=args.epochs, seed=args.seed, on_step=on_step)
    bar.close()
    file_sha = classifier.save_classifier(model, metadata, args.out)
    print(f"test accuracy {metadata['test_accuracy']:.4%} after {metadata['train_seconds']:.0f} s of training")
    print(f"wrote {args.out} (file sha256 {file_sha}, weights sha256 {metadata['weights_sha256']})")


def _eval_classifier(args: argparse.Namespace) -> None:
    from ebgan_core.data import load_mnist

    model, metadata = classifier.load_classifier(args.weights)
    images, labels = load_mnist("test")
    started = time.perf_counter()
    bar = progress_bar(total=1, description="evaluate", unit="pass")
    measured = classifier.accuracy(model, images, labels)
    bar.update(1)
    bar.close()
    print(
        f"test accuracy {measured:.4%} on {labels.numel()} images in {time.perf_counter() - started:.1f} s "
        f"(stored with the weights: {metadata['test_accuracy']:.4%}, trained in {metadata['train_seconds']:.0f} s)"
    )
