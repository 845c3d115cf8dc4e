"""Stacked convolutions: which mechanism trains B convolutional GAN members fastest on this machine, and how much
stacking gains over the same members one at a time (issue: images, target at least 1.5x member-steps/s at the laptop
shape and at Appendix C's 64x64 shapes, or the measured reason why not).

A training step as the image study takes it (one discriminator update on a real and a fake batch, one generator update
through it; Adam, losses as the families compute them) for DCGAN (its generator and discriminator) and EBGAN (the same
generator, Appendix C's convolutional auto-encoder), timed as (time of k2 steps - time of k1 steps) / (k2 - k1), the
fastest of ``--repeats``, on ``--threads`` threads, for: B members stacked with each mechanism of
``ebgan_core.stacked_conv`` (``loop``, ``grouped``) and one member alone (B x its step time). Prints and writes as JSON
member-steps/s, the ratios, and the GFLOP/s a member alone reaches (its step's FLOPs counted by
``torch.utils.flop_counter``) against this machine's float32 matmul peak on those threads, measured in the same run: a
member whose convolutions already run near the peak leaves stacking nothing to gain.

    python benchmarks/conv_stacking.py [--threads 1] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.* from a script or a copied tree

from benchmarks.group_parity import cpu_description
from benchmarks.throughput import matmul_peak
from ebgan_core.conv.models import ConvAutoEncoderDiscriminator, DcganDiscriminator, DcganGenerator
from ebgan_core.losses import discriminator_bce, generator_nonsaturating, margin_loss, pulling_away_term
from ebgan_core.stacked_conv import MECHANISMS

# name: (image size, channels, generator width, discriminator width, batch, members)
SHAPES = {
    "laptop-32x32": (32, 1, 16, 16, 64, 8),  # MNIST at 32x32, a quarter of DCGAN's widths
    "appendix-c-64x64": (64, 3, 64, 64, 64, 4),  # the paper's LSUN/CelebA networks
}
NOISE = 100


def one_step_function(family: str, shape: tuple, members: int, mechanism: str):
    """A closure running one training step of ``members`` stacked members."""
    size, channels, g_width, d_width, batch, _ = shape
    generator = DcganGenerator(members, NOISE, size, channels, g_width, mechanism=mechanism)
    if family == "dcgan":
        discriminator = DcganDiscriminator(members, size, channels, d_width, mechanism=mechanism)
    else:
        discriminator = ConvAutoEncoderDiscriminator(members, size, channels, d_width, mechanism=mechanism)
    for module in (generator, discriminator):
        for param in module.parameters():
            torch.nn.init.normal_(param, 0.0, 0.02)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(members, batch, channels, size, size) * 2 - 1

    def losses(on_real, on_fake):
        if family == "dcgan":
            return discriminator_bce(on_real.value, on_fake.value)
        return margin_loss(on_real.value, on_fake.value, 20.0)

    def step():
        z = torch.randn(members, batch, NOISE)
        fake = generator(z)
        loss_d = losses(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad()
        loss_d.sum().backward()
        opt_d.step()
        on_fake = discriminator(fake)
        loss_g = (generator_nonsaturating(on_fake.value) if family == "dcgan"
                  else on_fake.value.mean(-1) + 0.1 * pulling_away_term(on_fake.code))
        opt_g.zero_grad()
        loss_g.sum().backward()
        opt_g.step()

    return step


def step_seconds(step, k1: int, k2: int, repeats: int) -> float:
    def run(steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - started

    step()  # warm-up
    return min((run(k2) - run(k1)) / (k2 - k1) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, a sweep worker's)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each, the fastest kept (default 3)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    k1, k2, repeats = (1, 2, 1) if args.quick else (2, 5, args.repeats)
    peak = matmul_peak(torch.device("cpu"))
    print(f"float32 matmul peak on {args.threads} thread(s): {peak / 1e9:.1f} GFLOP/s", flush=True)
    results = {}
    for shape_name, shape in SHAPES.items():
        members = shape[-1]
        for family in ("dcgan", "ebgan-pt"):
            one = one_step_function(family, shape, 1, "loop")
            with FlopCounterMode(display=False) as counter:
                one()
            alone = step_seconds(one, k1, k2, repeats)
            row = {"members": members, "alone_member_steps_per_s": 1 / alone,
                   "alone_gflops": counter.get_total_flops() / alone / 1e9}
            for mechanism in MECHANISMS:
                together = step_seconds(one_step_function(family, shape, members, mechanism), k1, k2, repeats)
                row[f"{mechanism}_member_steps_per_s"] = members / together
                row[f"{mechanism}_over_alone"] = alone * members / together
            results[f"{shape_name}/{family}"] = row
            print(f"{shape_name:17s} {family:8s} B={members}: alone {row['alone_member_steps_per_s']:6.2f} "
                  f"({row['alone_gflops']:.0f} GFLOP/s), "
                  + ", ".join(f"{m} {row[f'{m}_member_steps_per_s']:6.2f} ({row[f'{m}_over_alone']:.2f}x)"
                              for m in MECHANISMS) + " member-steps/s", flush=True)
    summary = {"cpu": cpu_description(), "threads": args.threads, "steps": [k1, k2],
               "matmul_peak_gflops": peak / 1e9, "results": results}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
