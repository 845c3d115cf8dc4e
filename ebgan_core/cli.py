"""`ebgan classifier ...` and `ebgan train ...`: the core's commands (registered by ``analysis.command``, which hands
`ebgan train` the sweep profiles it can size a config to)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import torch

from ebgan_core.progress import progress_bar
from ebgan_core.table1 import classifier
from ebgan_core.table1.config import CHOICES, FIELD_HELP, PRESETS, TrialConfig
from ebgan_core.table1.families import FAMILIES


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (what is wrong, and where the options are listed), as every
    other error of the commands; its subcommands' parsers are of the same kind."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message}; `{self.prog} --help` lists the options\n")


def add_command(subparsers: argparse._SubParsersAction, name: str, text: str, **options: object
                ) -> argparse.ArgumentParser:
    """A subcommand whose one-line help in the command list is also its description under `--help`."""
    description = options.pop("description", None) or text.replace("%%", "%")  # help is %-formatted, a description not
    return subparsers.add_parser(name, help=text, description=description, **options)


def add_classifier_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `classifier train` and `classifier eval`."""
    parser = add_command(subparsers, "classifier", "train or evaluate the MNIST judge behind I' (the pinned "
                         "classifier whose predictions every score of generated digits uses)")
    commands = parser.add_subparsers(dest="classifier_command", required=True)
    train = add_command(commands, "train", "train the 3-layer ConvNet deterministically (a few minutes on 2 cores)")
    train.add_argument("--out", type=Path, default=Path("results/classifier/mnist_convnet.pt"),
                       help="where to write the weights (default results/classifier/mnist_convnet.pt)")
    train.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 training images (default 3)")
    train.add_argument("--seed", type=int, default=0, help="the training's seed (default 0)")
    train.set_defaults(handler=_train_classifier)
    evaluate = add_command(commands, "eval", "measure a weights file's accuracy on the 10k MNIST test images")
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


class SizingProfile(Protocol):
    """A sweep profile as `ebgan train` uses it: it sizes a config to its budget, and may score along the way."""

    score_every: int
    interim_samples: int | None

    def size(self, config: TrialConfig) -> TrialConfig: ...


def add_train_command(subparsers: argparse._SubParsersAction, profiles: Mapping[str, SizingProfile]) -> None:
    """Register `train`: one config (a preset and/or any TrialConfig field as a flag), optionally at a ``profiles``
    budget."""
    parser = add_command(
        subparsers, "train",
        "train one config or a paper figure preset; writes samples.png, metrics.json, checkpoint.pt",
        description="Train one configuration. Start from --preset (default: TrialConfig defaults), size it to a "
        "sweep profile's budget with --profile (its widths, steps, batch, samples per score and precision; its "
        "interim scores too), and override any field, e.g. `ebgan train --preset fig4b --profile laptop` or "
        "`ebgan train --preset fig4b --steps 3000`.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a Figure 4 configuration from Appendix C")
    parser.add_argument("--profile", choices=sorted(profiles), help="train at this sweep profile's budget (Table 1 "
                        "widths divided, its steps, batch, samples per score; also scored every score_every steps)")
    for spec in dataclasses.fields(TrialConfig):
        flag = "--" + spec.name.replace("_", "-")
        text = f"{FIELD_HELP[spec.name]} (default {spec.default!r})"
        if spec.type in ("bool", bool):
            parser.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif spec.name in CHOICES:
            parser.add_argument(flag, dest=spec.name, choices=CHOICES[spec.name], default=None, help=text)
        elif spec.name == "family":  # not argparse choices: a --plugin file registers its families after parsing
            parser.add_argument(flag, dest=spec.name, default=None, metavar="FAMILY",
                                help=f"{text}; registered: {', '.join(FAMILIES.names())}, and a --plugin file's")
        else:
            kind = {"int": int, "float": float}.get(str(spec.type), str)
            parser.add_argument(flag, dest=spec.name, type=kind, default=None, metavar=spec.name.upper(), help=text)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--out-dir", type=Path, default=Path("results/runs"),
                        help="where each run's folder <config hash>-seed<seed>/ goes (default results/runs)")
    parser.set_defaults(handler=_train, profiles=profiles)


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; a CUDA device that is absent is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} requested but CUDA is not available; fix: use --device cpu")
    return device


def _train(args: argparse.Namespace) -> None:
    from ebgan_core.data import load_mnist
    from ebgan_core.group import scoring_steps
    from ebgan_core.images import grid_png
    from ebgan_core.provenance import code_version, library_versions
    from ebgan_core.table1.checkpoint import save_checkpoint
    from ebgan_core.table1.train import train_group

    base = PRESETS[args.preset] if args.preset else TrialConfig()
    profile = args.profiles[args.profile] if args.profile else None
    if profile is not None:
        base = profile.size(base)
    overrides = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrialConfig) if getattr(args, f.name) is not None
    }
    config = base.replace(**overrides)
    every = profile.score_every if profile is not None else 0
    score_steps = scoring_steps(every, config.steps)
    interim_samples = profile.interim_samples if profile is not None else None
    device = resolve_device(args.device)
    run_dir = args.out_dir / f"{config.config_hash()[:12]}-seed{config.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    at = f" at profile {args.profile}" if args.profile else ""
    print(f"training {config.short_name()} for {config.steps} steps{at} on {device} -> {run_dir}")
    judge, judge_meta = classifier.load_classifier(device=device)
    images, _ = load_mnist("train")
    with progress_bar(config.steps, "train") as bar:
        (result,) = train_group(
            [config], images, judge, device=device, progress=lambda step, total: bar.update(1), keep_state=True,
            score_steps=score_steps, interim_samples=interim_samples,
        )
    metrics = {
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "seed": config.seed,
        "status": result.status,
        "steps": result.steps,
        "diverged_at_step": result.diverged_at_step,
        "seconds": result.seconds,
        "device": str(device),
        "scores": result.scores,
        "interim_scores": result.interim_scores,
        "curves": result.curves,
        "judge_weights_sha256": judge_meta["weights_sha256"],
        "code_version": code_version(),
        "library_versions": library_versions(),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if result.sample_grid is not None:
        (run_dir / "samples.png").write_bytes(grid_png(result.sample_grid))
    save_checkpoint(
        run_dir / "checkpoint.pt",
        config,
        result.state,
        {k: metrics[k] for k in ("status", "steps", "seconds", "code_version", "library_versions")},
    )
    if result.scores is None:
        print(f"diverged at step {result.diverged_at_step} after {result.seconds:.0f} s; wrote {run_dir}")
    else:
        print(
            f"I' = {result.scores['i_prime']:.3f} on {result.scores['n_samples']} samples "
            f"({result.scores['classes_present']} classes, IS {result.scores['inception_score']:.2f}) "
            f"after {result.seconds:.0f} s; wrote {run_dir}/samples.png, metrics.json, checkpoint.pt"
        )
