"""The yardstick: what a researcher would write without this project to run Table 1 configurations on Ray Tune.

One Tune trial per config (1 CPU each, so two trials run at once on two cores), textbook PyTorch (nn.Linear,
nn.BatchNorm1d, nn.Dropout, torch.optim), the paper's losses written out, the same MNIST and the same pinned judge,
and one I' score at the end (no scores along the way, no database, no checkpoints). ``benchmarks/vs_plain_script.py``
times it against the project's sweep on the same configs.

    python benchmarks/plain_script.py --configs configs.json --out results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

IMAGE = 1024


def hidden(in_features: int, width: int, depth: int, norm_first: bool, dropout: float) -> list[nn.Module]:
    """``depth`` layers: linear, batch norm (not on a discriminator's input layer), ReLU, dropout."""
    layers: list[nn.Module] = []
    for index in range(depth):
        normed = index > 0 or norm_first
        layers += [nn.Linear(in_features if index == 0 else width, width, bias=not normed)]
        layers += [nn.BatchNorm1d(width)] if normed else []
        layers += [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
    return layers


def networks(config: dict[str, Any]) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """Generator, discriminator (EBGAN: the encoder) and EBGAN's decoder, with the paper's initialisation."""
    generator = nn.Sequential(*hidden(config["noise_dim"], config["size_g"], config["n_layer_g"] - 1, True, 0.0),
                              nn.Linear(config["size_g"], IMAGE), nn.Tanh())
    dropout = config["dropout_rate"] if config["dropout_d"] else 0.0
    body = hidden(IMAGE, config["size_d"], config["n_layer_d"] - 1, False, dropout)
    if config["family"] == "ebgan":
        discriminator, decoder = nn.Sequential(*body), nn.Linear(config["size_d"], IMAGE)
    else:
        discriminator, decoder = nn.Sequential(*body, nn.Linear(config["size_d"], 1)), None
    for std, net in ((0.02, generator), (0.002, discriminator), (0.002, decoder)):
        for layer in net.modules() if net is not None else ():
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, std)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return generator, discriminator, decoder


def optimizer(kind: str, params: Any, config: dict[str, Any]) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=config["lr"], betas=(config["adam_beta1"], config["adam_beta2"]))
    return torch.optim.SGD(params, lr=config["lr"], momentum=config["sgd_momentum"])


def train_and_score(config: dict[str, Any]) -> dict[str, float]:
    """Train one config and score its generator by I' on ``score_samples`` samples."""
    from ebgan_core.data import load_mnist
    from ebgan_core.table1.classifier import load_classifier
    from ebgan_core.table1.scoring import score_images

    torch.manual_seed(config["seed"])
    started = time.perf_counter()
    images = load_mnist("train")[0].reshape(-1, IMAGE)
    judge, _ = load_classifier()
    generator, discriminator, decoder = networks(config)
    d_params = list(discriminator.parameters()) + (list(decoder.parameters()) if decoder is not None else [])
    opt_d, opt_g = optimizer(config["optim_d"], d_params, config), optimizer(config["optim_g"], generator.parameters(),
                                                                              config)
    batch = config["batch_size"]

    def discriminate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if decoder is None:
            return discriminator(x).squeeze(1), x
        code = discriminator(x)
        return (decoder(code) - x).norm(dim=1), code

    order, position = torch.randperm(len(images)), 0
    for _ in range(config["steps"]):
        if position + batch > len(images):
            order, position = torch.randperm(len(images)), 0
        real = images[order[position : position + batch]]
        position += batch
        z = torch.randn(batch, config["noise_dim"])
        with torch.no_grad():
            fake = generator(z)
        out_real, _ = discriminate(real)
        out_fake, _ = discriminate(fake)
        if decoder is not None:
            loss_d = (out_real + F.relu(config["margin"] - out_fake)).mean()
        else:
            loss_d = (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
                      + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for param in d_params:  # the generator's step: no gradients for the discriminator's weights
            param.requires_grad_(False)
        out, _ = discriminate(generator(z))
        loss_g = out.mean() if decoder is not None else F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for param in d_params:
            param.requires_grad_(True)
    generator.eval()
    with torch.no_grad():
        samples = generator(torch.randn(config["score_samples"], config["noise_dim"]))
    score = score_images(samples, judge)["i_prime"]
    return {"i_prime": score, "seconds": time.perf_counter() - started}


def trial(tune_config: dict[str, Any]) -> None:
    """One Ray Tune trial: one config."""
    from ray import tune

    tune.report(train_and_score(tune_config["config"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=Path, required=True, help="a JSON list of Table 1 config dicts")
    parser.add_argument("--out", type=Path, required=True, help="where to write every config's I' and the wall time")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    args = parser.parse_args()
    import ray
    from ray import tune

    configs = json.loads(args.configs.read_text())
    started = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            tune.with_resources(trial, {"cpu": args.cpus_per_trial}),
            param_space={"config": tune.grid_search(configs)},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(storage_path=str(Path("results/ray").resolve()), verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - started
    scores = [r.metrics.get("i_prime") for r in results]
    args.out.write_text(json.dumps({"wall_seconds": wall, "configs": len(configs), "i_prime": scores}, indent=1))
    print(f"plain script: {len(configs)} configs in {wall:.0f} s")


if __name__ == "__main__":
    main()
