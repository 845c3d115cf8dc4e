"""Where a training step's time goes: the optimiser's share of a step, and scoring's share of a whole sweep, measured
in one run on this device (``throughput.py`` and ``gpu_check.py`` report them as top-level JSON keys).

- ``optimizer_share(configs, ...)``: the time spent in both optimisers' updates over the time of whole steps, timed
  inside real steps of a Table 1 group (``GanGroup.step``), on the CPU or with CUDA synchronised around each update;
- ``sweep_scoring_share(configs, score_every, ...)``: the share of a sweep's time spent scoring (final and interim,
  as the profile asks), from each of its groups' measured step time and one measured scoring of a member;
- ``kernel_launches_per_step(configs, ...)``: on CUDA, the kernels and host launches of a step, eager and replayed
  from a captured CUDA graph.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from ebgan_core.allocator import keep_freed_memory
from ebgan_core.cuda_graph import WARMUP_STEPS, CapturedStep, step_function
from ebgan_core.group import scoring_steps
from ebgan_core.rng import member_generators, real_batches
from ebgan_core.table1.classifier import MnistConvNet
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.train import STREAMS, GanGroup
from sweeps.studies import pack_groups


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _group(configs: Sequence[TrialConfig], judge: MnistConvNet, device: torch.device) -> GanGroup:
    """The group as ``run_group`` trains it: freed memory kept in the process."""
    keep_freed_memory()
    return GanGroup(configs, [member_generators(c, STREAMS, device) for c in configs], device, torch.float32,
                    judge=judge)


def optimizer_share(configs: Sequence[TrialConfig], data: torch.Tensor, judge: MnistConvNet, device: torch.device,
                    steps: int = 20, warmup: int = 3) -> dict[str, float]:
    """The optimisers' share of a training step of the group ``configs``, after ``warmup`` steps (compilation)."""
    group = _group(configs, judge, device)
    spent = {"optimizer": 0.0}
    for optimizer in (group.optimizer_d, group.optimizer_g):
        update = optimizer.step

        def timed_update(active: torch.Tensor, update=update) -> None:
            _sync(device)
            started = time.perf_counter()
            update(active)
            _sync(device)
            spent["optimizer"] += time.perf_counter() - started

        optimizer.step = timed_update
    real = data.reshape(data.shape[0], -1).to(device)
    batches = real_batches(real, configs[0].batch_size, configs[0].data_seed)
    active = torch.ones(len(configs), dtype=torch.bool, device=device)
    for step in range(warmup):
        group.step(step, next(batches).expand(len(configs), -1, -1), active)
    spent["optimizer"] = 0.0
    _sync(device)
    started = time.perf_counter()
    for step in range(warmup, warmup + steps):
        group.step(step, next(batches).expand(len(configs), -1, -1), active)
    _sync(device)
    total = time.perf_counter() - started
    return {"optimizer_share": spent["optimizer"] / total, "step_seconds": total / steps,
            "member_steps_per_s": len(configs) * steps / total, "members": len(configs),
            "update": group.optimizer_d.update}


def step_seconds(configs: Sequence[TrialConfig], data: torch.Tensor, judge: MnistConvNet, device: torch.device,
                 steps: int = 8, warmup: int = 2) -> float:
    """Seconds of one training step of the group ``configs`` (after ``warmup`` steps)."""
    return optimizer_share(configs, data, judge, device, steps, warmup)["step_seconds"]


def scoring_seconds(config: TrialConfig, judge: MnistConvNet, device: torch.device, repeats: int = 2) -> float:
    """Seconds of one scoring of one member (``score_samples`` samples generated and judged), the fastest of
    ``repeats``."""
    group = _group([config], judge, device)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        group.scores([0], step=1)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return best


def sweep_scoring_share(configs: Sequence[TrialConfig], score_every: int, interim_samples: int | None,
                        max_members: int, data: torch.Tensor, judge: MnistConvNet, device: torch.device,
                        log=print) -> dict[str, float]:
    """Scoring's share of the whole sweep of ``configs`` (packed as a sweep packs them): every group's training
    (its measured step time x its steps) against its members' scorings (final, and every ``score_every`` steps on
    ``interim_samples`` samples)."""
    training = scoring = 0.0
    final = scoring_seconds(configs[0], judge, device)
    interim = scoring_seconds(configs[0].replace(score_samples=interim_samples), judge, device) if interim_samples \
        else final
    for members in pack_groups(configs, max_members):
        first = members[0]
        seconds = step_seconds(members, data, judge, device) * first.steps
        scorings = final + interim * len(scoring_steps(score_every, first.steps))
        training += seconds
        scoring += len(members) * scorings
        log(f"  group G{first.n_layer_g}x{first.size_g} D{first.n_layer_d}x{first.size_d} x{len(members)}: "
            f"training {seconds:.0f} s, scoring {len(members) * scorings:.0f} s")
    return {"scoring_share": scoring / (training + scoring), "training_seconds": training,
            "scoring_seconds": scoring, "final_scoring_seconds_per_member": final,
            "interim_scoring_seconds_per_member": interim}


LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cudaMemcpyAsync", "cudaMemsetAsync")  # the CUDA runtime and driver calls that start work on the device


def kernel_launches_per_step(configs: Sequence[TrialConfig], data: torch.Tensor, judge: MnistConvNet,
                             device: torch.device, steps: int = 5) -> dict[str, Any] | None:
    """Per training step of the group ``configs`` on CUDA (None elsewhere), counted by the profiler: the kernels that
    run on the device and the launches the host makes for them (kernel and graph launches, copies), eager and as a
    sweep runs the step, replayed from a captured CUDA graph (``ebgan_core.cuda_graph``; ``captured`` says whether
    capture worked, or why not)."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    real = data.reshape(data.shape[0], -1).to(device)
    active = torch.ones(len(configs), dtype=torch.bool, device=device)
    counts: dict[str, Any] = {}
    for mode in ("eager", "captured"):
        group = _group(configs, judge, device)
        run = step_function(group.step, group.capture_plan, device, enabled=mode == "captured")
        batches = real_batches(real, configs[0].batch_size, configs[0].data_seed)
        for step in range(WARMUP_STEPS + 1):  # the captured step is captured by the last of these
            run(step, next(batches).expand(len(configs), -1, -1), active)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as trace:
            for step in range(WARMUP_STEPS + 1, WARMUP_STEPS + 1 + steps):
                run(step, next(batches).expand(len(configs), -1, -1), active)
            torch.cuda.synchronize()
        events = trace.events()
        counts[f"{mode}_kernels"] = sum(e.device_type == torch.autograd.DeviceType.CUDA for e in events) / steps
        counts[f"{mode}_launches"] = sum(e.name in LAUNCHES for e in events) / steps
        calls = Counter(e.name for e in events if e.name.startswith("cu"))  # launches, copies, syncs
        counts[f"{mode}_runtime_calls"] = dict(calls.most_common(12))
        if mode == "captured":
            counts["captured"] = ((run.graph is not None or run.failure) if isinstance(run, CapturedStep)
                                  else "switched off (EBGAN_CUDA_GRAPH=0)")
    return counts
