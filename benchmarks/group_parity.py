"""Does a member's result depend on its group? Each member of a few groups trained alone and in its group, compared bit
for bit, in this tree and in another revision (default: the main before the group-independent arithmetic), in one
run on this machine; and the cost of the change in member-steps/s (``against_main.py``'s groups, alternating).

Each revision is checked out into a temporary git worktree and measured in a subprocess of its own. Per group, dtype
and thread setting: how many members equal their alone run bit for bit (every weight, batch-norm statistic, score and
sample grid) and the largest absolute weight difference. Thread settings: both on 1 thread, both on 2, and the group on
2 against the member alone on 1 (a local executor's group against a Ray worker's trial). Prints the CPU it ran on.

With ``--growth``: how far a one-ulp nudge of every initial weight carries each member of the tests' group of 24 over
its 12 steps (the largest difference relative to each tensor's largest magnitude), in float32 and float64; what the
float32 parity tests' tolerance rests on (``tests/test_train.py``).

    python benchmarks/group_parity.py [--baseline REV] [--steps-scale 1] [--rounds 2] [--growth] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from against_main import benchmark_groups, checked_out, run_in_tree

REPO = Path(__file__).resolve().parent.parent
THREADS = ((1, 1), (2, 2), (2, 1))  # (the group's, the member alone's)
DTYPES = ("float32", "float64")
# Runs inside a revision's tree: train every group and each of its members alone; print one JSON line.
MEASURE = r"""
import json, sys
import torch
from ebgan_core.data import load_mnist
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.train import train_group
from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.pi_mnist import PiMnist, load_pi_mnist
from ebgan_core.table2.train import train_ladder_group

groups, threads, dtype = json.loads(sys.argv[1]), json.loads(sys.argv[2]), getattr(torch, sys.argv[3])
mnist, judge, pi = load_mnist("train")[0][:4096], load_classifier()[0], load_pi_mnist()
pi = PiMnist(pi.train_images[:4096], pi.train_labels[:4096], pi.test_images[:1000], pi.test_labels[:1000])

def train(study, configs):
    if study == "table2":
        return train_ladder_group([LadderConfig.from_dict(c) for c in configs], pi, keep_state=True, dtype=dtype)
    return train_group([TrialConfig.from_dict(c) for c in configs], mnist, judge, keep_state=True, dtype=dtype)

def difference(a, b):
    tensors = [(a.state[part][name], value) for part in b.state for name, value in b.state[part].items()]
    largest = max((x.double() - y.double()).abs().max().item() for x, y in tensors)
    grids = (a.sample_grid is None and b.sample_grid is None) or (a.sample_grid == b.sample_grid).all()
    return all(torch.equal(x, y) for x, y in tensors) and a.scores == b.scores and bool(grids), largest

report = {}
for name, (study, configs) in groups.items():
    torch.set_num_threads(threads[0])
    grouped = train(study, configs)
    torch.set_num_threads(threads[1])
    pairs = [difference(grouped[i], train(study, [c])[0]) for i, c in enumerate(configs)]
    report[name] = {"members": len(configs), "bitwise_equal": sum(same for same, _ in pairs),
                    "max_abs_difference": max(d for _, d in pairs)}
print(json.dumps(report))
"""


def parity_groups(steps_scale: float) -> dict[str, tuple[str, list[dict]]]:
    """The groups compared: the tests' 24-member group (every per-member setting varies) at the tests' shapes and at
    shapes that are not whole vectors (batch 10, widths 50 and 20), the largest laptop EBGAN group and the laptop GAN
    group, and a mixed Table 2 group (LN, LN with other settings, the supervised MLP)."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_ladder import SMALL
    from test_train import group_of_24

    from ebgan_core.table1.config import TrialConfig

    def steps(configs: list[TrialConfig], count: int) -> list[dict]:
        return [c.replace(steps=max(2, round(count * steps_scale)), score_samples=64).to_dict() for c in configs]

    laptop = benchmark_groups()
    ladder = SMALL.replace(steps=max(2, round(8 * steps_scale)), decay_start=4)
    return {
        "tests-24": ("table1", steps(group_of_24(), 12)),
        "odd-widths-24": ("table1", steps([c.replace(batch_size=10, size_g=50, size_d=20, noise_dim=10)
                                           for c in group_of_24()], 12)),
        "laptop-ebgan-7": ("table1", steps([TrialConfig.from_dict(c) for c in laptop["laptop_ebgan_largest"]], 60)),
        "laptop-gan-24": ("table1", steps([TrialConfig.from_dict(c) for c in laptop["laptop_gan_24"]], 60)),
        "table2-3": ("table2", [c.to_dict() for c in (ladder, ladder.replace(recon_weight=500.0, lr=0.001, seed=1),
                                                       ladder.replace(family="mlp", recon_weight=0.0, noise_std=0.0))]),
    }


def rounding_growth(dtype: str) -> list[float]:
    """Per member of the tests' group of 24: the largest relative weight difference after its steps between the
    group trained as it is and trained from initial weights nudged up by one ulp."""
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    from test_train import group_of_24

    from ebgan_core.data import load_mnist
    from ebgan_core.group import run_group
    from ebgan_core.table1.classifier import load_classifier
    from ebgan_core.table1.train import GanGroup

    class Nudged(GanGroup, study="table1", config_type=GanGroup.config_type, streams=GanGroup.streams,
                 member_bytes=GanGroup.member_bytes):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                for parameter in self.model.parameters():
                    parameter.copy_(torch.nextafter(parameter, torch.full_like(parameter, torch.inf)))

    data, judge, configs = load_mnist("train")[0][:4096], load_classifier()[0], group_of_24()
    plain, nudged = (run_group(model, configs, data, {"judge": judge}, keep_state=True, dtype=getattr(torch, dtype))
                     for model in (GanGroup, Nudged))
    return [max(((a.state[part][name] - value).abs().max() / value.abs().max().clamp_min(1e-30)).item()
                for part in b.state for name, value in b.state[part].items())
            for a, b in zip(plain, nudged, strict=True)]


def cpu_description() -> dict[str, object]:
    """The CPU model, its vector extensions and the vector width PyTorch's kernels use here."""
    import torch

    model, flags = "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return {"model": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "extensions": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="166a0b7", help="the revision to compare with (default: the main "
                        "before the group-independent arithmetic)")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every group's steps by this")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of against_main.py's speed comparison "
                        "(0: none)")
    parser.add_argument("--growth", action="store_true", help="only the growth of a one-ulp nudge, in this tree")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/group_parity.json"))
    args = parser.parse_args()
    cpu = cpu_description()
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, torch {cpu['torch']} ({cpu['torch_cpu_capability']} kernels), "
          f"{' '.join(cpu['extensions'])}", flush=True)
    if args.growth:
        growth = {dtype: rounding_growth(dtype) for dtype in DTYPES}
        for dtype, values in growth.items():
            print(f"{dtype}: " + " ".join(f"{member}:{value:.1e}" for member, value in enumerate(values)))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": cpu, "growth": growth}, indent=2))
        print(f"wrote {args.json}")
        return
    groups = parity_groups(args.steps_scale)
    report: dict[str, object] = {"baseline": args.baseline, "cpu": cpu, "parity": {}}
    with checked_out(args.baseline) as baseline:
        for label, tree in (("baseline", baseline), ("this tree", REPO)):
            for dtype in DTYPES:
                for threads in THREADS:
                    key = f"{label} {dtype} threads group {threads[0]} alone {threads[1]}"
                    result = run_in_tree(tree, MEASURE, json.dumps(groups), json.dumps(threads), dtype)
                    report["parity"][key] = result
                    print(key + ": " + ", ".join(
                        f"{name} {r['bitwise_equal']}/{r['members']} ({r['max_abs_difference']:.2g})"
                        for name, r in result.items()), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    if args.rounds:
        speed = args.json.with_name(args.json.stem + "-speed.json")
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "against_main.py"), "--baseline", args.baseline,
                        "--rounds", str(args.rounds), "--json", str(speed)], check=True)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
