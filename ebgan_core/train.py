"""Train a group of grid members that share layer shapes as one stacked model (one code path for B >= 1).

Each step: one discriminator update, then one generator update on the same z (Section 2.1):
  EBGAN  L_D = D(x) + [m - D(G(z))]^+ ,  L_G = D(G(z)) + lambda_PT * f_PT(Enc(G(z)))
  GAN    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0),  L_G = -log sigmoid(D(G(z)))
A member whose loss turns NaN/inf is marked diverged and frozen; the others go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ebgan_core.classifier import MnistConvNet
from ebgan_core.config import TrialConfig
from ebgan_core.footprint import SCORE_CHUNK, default_memory_budget, split_into_waves
from ebgan_core.images import to_uint8
from ebgan_core.ladder_config import LadderConfig
from ebgan_core.losses import (
    decayed_margin,
    discriminator_bce,
    energy,
    generator_nonsaturating,
    margin_loss,
    pulling_away_term,
)
from ebgan_core.models import D_INIT_STD, G_INIT_STD, StackedGan, init_weights_
from ebgan_core.optim import StackedOptimizer
from ebgan_core.precision import bf16_gemm_for
from ebgan_core.rng import derive_seed, fixed_noise, member_generators, real_batches
from ebgan_core.scoring import score_image_sets

GRID_SAMPLES = 64  # fixed-z samples per member (an 8x8 grid)
CURVE_POINTS = 50  # training curves are stored as this many bin means

Progress = Callable[[int, int], None]


@dataclass
class MemberResult:
    """What one grid member produced."""

    config: TrialConfig
    status: str  # "completed" or "diverged"
    steps: int  # updates made (for a diverged member: up to the step that diverged)
    scores: dict[str, object] | None  # None for a diverged member
    curves: dict[str, list[float]]
    sample_grid: np.ndarray | None  # uint8 [GRID_SAMPLES, 32, 32] from the fixed z; None if diverged
    seconds: float  # the group's wall time divided by its size
    group_seconds: float
    group_size: int
    diverged_at_step: int | None = None
    resumed_from_step: int | None = None  # the step its training resumed at from a checkpoint; None: uninterrupted
    interim_scores: dict[int, dict[str, object]] = field(default_factory=dict)  # step -> scores, before the end
    state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # weights, B=1 slices


def check_group(configs: Sequence[TrialConfig | LadderConfig]) -> None:
    """All members must share a group key; (config hash, seed) must be unique within the group (either study)."""
    if not configs:
        raise ValueError("a stacked group needs at least one config")
    keys = {c.group_key() for c in configs}
    if len(keys) > 1:
        raise ValueError(f"configs of one group must share group_key(); got {len(keys)} different keys")
    names = [(c.config_hash(), c.seed) for c in configs]
    if len(set(names)) != len(names):
        raise ValueError("a group holds the same (config, seed) twice")


def build_group(
    configs: Sequence[TrialConfig], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[StackedGan, list[dict[str, torch.Generator]]]:
    """The stacked model with each member initialised from its own stream, and each member's generators.

    ``dtype`` is that of weights and activations; a ``bf16`` group's matmuls run in bfloat16 (native or emulated,
    ``ebgan_core.precision``) over float32 weights.
    """
    if configs[0].precision == "bf16" and dtype != torch.float32:
        raise ValueError(f"precision bf16 keeps float32 master weights; got dtype {dtype}")
    streams = [member_generators(c, device) for c in configs]
    model = StackedGan(configs, [s["dropout"] for s in streams]).to(device)
    init_weights_(model.generator, G_INIT_STD, [s["init"] for s in streams])
    init_weights_(model.discriminator, D_INIT_STD, [s["init"] for s in streams])
    model = model.to(dtype)
    if configs[0].precision == "bf16":
        model.use_gemm(bf16_gemm_for(device))
    return model, streams


def draw_noise(
    generators: Sequence[torch.Generator],
    count: int,
    noise_dim: int,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """z ~ N(0, 1): [B, count, noise_dim], member b from its own generator (drawn in float32, then cast)."""
    return torch.stack([torch.randn(count, noise_dim, generator=g, device=device) for g in generators]).to(dtype)


def member_state(model: StackedGan, member: int) -> dict[str, dict[str, torch.Tensor]]:
    """Member ``member``'s generator and discriminator tensors as B=1 slices (for checkpoints)."""
    return {
        part: {k: v[member : member + 1].detach().cpu().clone() for k, v in getattr(model, part).state_dict().items()}
        for part in ("generator", "discriminator")
    }


def _losses(model: StackedGan, real: torch.Tensor, fake: torch.Tensor, margins: torch.Tensor):
    """Discriminator loss [B] and the mean energies (EBGAN) or logits (GAN) of real and fake [B]."""
    if model.family == "ebgan":
        e_real = energy(real, model.discriminator(real)[0])
        e_fake = energy(fake, model.discriminator(fake)[0])
        return margin_loss(e_real, e_fake, margins), e_real.mean(-1), e_fake.mean(-1)
    logits_real, logits_fake = model.discriminator(real), model.discriminator(fake)
    return discriminator_bce(logits_real, logits_fake), logits_real.mean(-1), logits_fake.mean(-1)


def _generator_loss(model: StackedGan, fake: torch.Tensor, pt_weights: torch.Tensor | None) -> torch.Tensor:
    """``pt_weights`` is None when no member of the group uses the pulling-away term."""
    if model.family == "ebgan":
        recon, code = model.discriminator(fake)
        loss = energy(fake, recon).mean(-1)
        if pt_weights is not None:
            loss = loss + pt_weights * pulling_away_term(code)
        return loss
    return generator_nonsaturating(model.discriminator(fake))


def bin_means(series: torch.Tensor, points: int) -> list[list[float]]:
    """[steps, B] -> per member, ``points`` bin means (NaN where a member had diverged)."""
    steps = series.shape[0]
    edges = np.linspace(0, steps, min(points, steps) + 1).round().astype(int)
    values = series.double().cpu().numpy()
    return [
        [float(values[a:b, m].mean()) for a, b in itertools.pairwise(edges)]
        for m in range(values.shape[1])
    ]


@dataclass
class Checkpointing:
    """Save a group's training state every ``every_s`` seconds of training, and optionally resume from one.

    ``save`` gets the state as plain tensors, numbers and strings (``ebgan_core.checkpoint.save_group_state``
    writes it; ``load_group_state`` reads it back for ``resume``). A resumed group ends exactly as an uninterrupted
    one would: weights, batch-norm statistics, optimiser state, every random stream and the data order are restored.
    """

    every_s: float
    save: Callable[[dict[str, Any]], None]
    resume: dict[str, Any] | None = None


GROUP_STATE_FORMAT = 1


def train_group(
    configs: Sequence[TrialConfig],
    data: torch.Tensor,
    judge: MnistConvNet,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    keep_state: bool = False,
    dtype: torch.dtype = torch.float32,
    memory_budget: int | None = None,
    checkpointing: Checkpointing | None = None,
    score_steps: Sequence[int] = (),
) -> list[MemberResult]:
    """Train B members at once on ``data`` (real images [N, 1, 32, 32] or [N, 1024] in [-1, 1]); score them.

    ``judge`` scores each member on ``score_samples`` samples; ``progress(step, total)`` is called every
    step; ``keep_state`` returns each member's weights too. On CUDA, float32 matmuls may use TF32.
    ``dtype=torch.float64`` is for numerical checks against references. Members that do not fit in
    ``memory_budget`` bytes at once (default: 80% of the memory available on the device) train in
    consecutive waves; a member's result does not depend on its wave. ``checkpointing`` saves the group's
    state now and then, and resumes from a saved one. Members are also scored after each of ``score_steps``
    (below ``steps``; ``MemberResult.interim_scores``), from a sample stream of each step's own, so these
    scores leave the rest of the result unchanged.
    """
    check_group(configs)
    bad_steps = [s for s in score_steps if not 0 < s < configs[0].steps]
    if bad_steps:
        raise ValueError(f"score_steps must lie in 1..steps-1 ({configs[0].steps - 1}), got {bad_steps[0]}")
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    resume = checkpointing.resume if checkpointing else None
    if resume is not None:
        check_resumable(resume, configs)
        waves = [[configs[i] for i in wave] for wave in resume["waves"]]  # the split it was saved with
        results = [_result_from_state(r) for r in resume["finished"]]
    else:
        budget = default_memory_budget(device) if memory_budget is None else memory_budget
        waves = split_into_waves(configs, budget, dtype)
        results = []
    data = data.reshape(data.shape[0], -1).to(device, dtype)
    for index in range(resume["wave"] if resume else 0, len(waves)):
        wave_progress = None
        if progress is not None:
            def wave_progress(step: int, total: int, done: int = index) -> None:
                progress(done * total + step, len(waves) * total)
        wave_checkpointing = None
        if checkpointing is not None:
            def save_group(wave_state: dict[str, Any], wave: int = index, done: list = results) -> None:
                checkpointing.save({
                    "format": GROUP_STATE_FORMAT, "members": member_keys(configs),
                    "waves": _wave_indices(waves), "wave": wave,
                    "finished": [_result_state(r) for r in done], "run": wave_state})
            resumed = resume["run"] if resume and index == resume["wave"] else None
            wave_checkpointing = Checkpointing(checkpointing.every_s, save_group, resumed)
        results += _train_wave(waves[index], data, judge, device, wave_progress, keep_state, dtype, wave_checkpointing,
                               frozenset(score_steps))
    return results


def member_keys(configs: Sequence[TrialConfig | LadderConfig]) -> list[str]:
    """``config_hash:seed`` of each member: what a saved group state says it belongs to."""
    return [f"{c.config_hash()}:{c.seed}" for c in configs]


def _wave_indices(waves: list[list[TrialConfig]]) -> list[list[int]]:
    starts = list(itertools.accumulate((len(w) for w in waves), initial=0))
    return [list(range(a, b)) for a, b in itertools.pairwise(starts)]


def check_resumable(state: dict[str, Any], configs: Sequence[TrialConfig | LadderConfig]) -> None:
    """Refuse a saved group state of another format or of other members."""
    if state.get("format") != GROUP_STATE_FORMAT:
        raise ValueError(f"group state has format {state.get('format')!r}, expected {GROUP_STATE_FORMAT}")
    if state["members"] != member_keys(configs):
        raise ValueError("the saved group state is for other members (configs or seeds differ); start afresh")


def _result_state(result: MemberResult) -> dict[str, Any]:
    """A finished member as plain values (its sample grid as a tensor), for a group checkpoint."""
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    grid = result.sample_grid
    return fields | {"config": result.config.to_dict(), "sample_grid": None if grid is None else torch.from_numpy(grid)}


def _result_from_state(state: dict[str, Any]) -> MemberResult:
    grid = state["sample_grid"]
    return MemberResult(**state | {"config": TrialConfig.from_dict(state["config"]),
                                   "sample_grid": None if grid is None else grid.numpy()})


class _Wave:
    """The training state of members that fit in memory together, one ``step()`` at a time."""

    def __init__(self, configs: Sequence[TrialConfig], device: torch.device, dtype: torch.dtype) -> None:
        first = configs[0]
        self.configs, self.first, self.device, self.dtype = configs, first, device, dtype
        self.model, self.streams = build_group(configs, device, dtype)
        members = len(configs)
        self.margins = torch.tensor([c.margin for c in configs], device=device, dtype=dtype).unsqueeze(-1)
        self.margin_decays = torch.tensor([c.margin_decay_steps for c in configs], device=device,
                                          dtype=dtype).unsqueeze(-1)
        self.decaying = any(c.margin_decay_steps for c in configs)
        self.pt_weights = (torch.tensor([c.pt_weight for c in configs], device=device, dtype=dtype)
                           if any(c.pt_weight for c in configs) else None)
        betas = (first.adam_beta1, first.adam_beta2)
        self.optimizer_d = StackedOptimizer(self.model.discriminator.parameters(), [c.optim_d for c in configs],
                                            [c.lr for c in configs], betas, first.sgd_momentum)
        self.optimizer_g = StackedOptimizer(self.model.generator.parameters(), [c.optim_g for c in configs],
                                            [c.lr for c in configs], betas, first.sgd_momentum)
        self.active = torch.ones(members, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((members,), -1, dtype=torch.long, device=device)
        self.curves = torch.zeros(4, first.steps, members, device=device, dtype=dtype)  # loss_d, loss_g, real, fake
        self.step_done = 0
        self.seconds_before = 0.0  # training time spent before a resume
        self.interim: dict[int, dict[int, dict[str, object]]] = {}  # step -> member -> scores

    def step(self, real: torch.Tensor) -> None:
        """One discriminator update, then one generator update on the same z."""
        model, step, first = self.model, self.step_done, self.first
        z = draw_noise([s["noise"] for s in self.streams], first.batch_size, first.noise_dim, self.device, self.dtype)
        # Discriminator update on real and (detached) fake batches.
        with torch.no_grad():
            fake = model.generator(z)
        margins_now = decayed_margin(self.margins, self.margin_decays, step) if self.decaying else self.margins
        loss_d, real_stat, fake_stat = _losses(model, real, fake, margins_now)
        self.optimizer_d.zero_grad()
        loss_d.sum().backward()
        step_ok = self.active & torch.isfinite(loss_d)
        self.optimizer_d.step(step_ok)
        # Generator update through the (frozen) discriminator on the same z.
        model.discriminator.requires_grad_(False)
        loss_g = _generator_loss(model, model.generator(z), self.pt_weights)
        self.optimizer_g.zero_grad()
        loss_g.sum().backward()
        model.discriminator.requires_grad_(True)
        step_ok &= torch.isfinite(loss_g)
        self.optimizer_g.step(step_ok)
        self.diverged_at = torch.where(self.active & ~step_ok, step, self.diverged_at)
        self.active = step_ok
        self.curves[:, step] = torch.stack([loss_d.detach(), loss_g.detach(), real_stat.detach(), fake_stat.detach()])
        self.step_done += 1

    @torch.no_grad()
    def score_now(self, judge: MnistConvNet) -> None:
        """Score the members still alive at this step, from streams of this step's own (the training's streams and
        state are left as they were)."""
        generators = [torch.Generator(device=self.device).manual_seed(
            derive_seed(c.seed, c.config_hash(), "score", self.step_done)) for c in self.configs]
        self.model.eval()
        self.interim[self.step_done] = _score_alive(self.model, self.configs, generators, judge, self.active.cpu())
        self.model.train()

    def state(self, seconds: float) -> dict[str, Any]:
        """Everything the next step depends on, as CPU copies; ``seconds``: training time so far."""
        return {
            "step": self.step_done, "seconds": seconds,
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer_d": self.optimizer_d.state_dict(), "optimizer_g": self.optimizer_g.state_dict(),
            "streams": [{name: g.get_state() for name, g in member.items()} for member in self.streams],
            "active": self.active.cpu(), "diverged_at": self.diverged_at.cpu(),
            "curves": self.curves[:, : self.step_done].cpu().clone(), "interim": self.interim,
        }

    @torch.no_grad()
    def load(self, state: dict[str, Any]) -> None:
        """Continue from ``state()``'s output."""
        self.model.load_state_dict(state["model"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        for member, saved in zip(self.streams, state["streams"], strict=True):
            for name, generator in member.items():
                generator.set_state(saved[name])
        self.active = state["active"].to(self.device)
        self.diverged_at = state["diverged_at"].to(self.device)
        self.step_done = int(state["step"])
        self.curves[:, : self.step_done] = state["curves"].to(self.device, self.dtype)
        self.seconds_before = float(state["seconds"])
        self.interim = dict(state["interim"])


def _train_wave(
    configs: Sequence[TrialConfig],
    data: torch.Tensor,
    judge: MnistConvNet,
    device: torch.device,
    progress: Progress | None,
    keep_state: bool,
    dtype: torch.dtype,
    checkpointing: Checkpointing | None,
    score_steps: frozenset[int],
) -> list[MemberResult]:
    """``train_group`` for members that fit in memory together; ``data`` is [N, 1024] on ``device``."""
    wave = _Wave(configs, device, dtype)
    if checkpointing is not None and checkpointing.resume is not None:
        wave.load(checkpointing.resume)
    started = time.perf_counter() - wave.seconds_before
    last_saved = time.monotonic()
    steps = wave.first.steps
    batches = real_batches(data, wave.first.batch_size, wave.first.data_seed, skip=wave.step_done)
    wave.model.train()
    while wave.step_done < steps:
        wave.step(next(batches).expand(len(configs), -1, -1))
        if progress is not None:
            progress(wave.step_done, steps)
        if wave.step_done in score_steps:
            wave.score_now(judge)
        if checkpointing is not None and time.monotonic() - last_saved >= checkpointing.every_s:
            checkpointing.save(wave.state(time.perf_counter() - started))
            last_saved = time.monotonic()
    resumed_from = checkpointing.resume["step"] if checkpointing and checkpointing.resume else None
    results = _finish(wave.model, configs, wave.streams, judge, wave.active.cpu(), wave.diverged_at.cpu(), wave.curves,
                      keep_state, started, resumed_from)
    for member, result in enumerate(results):
        result.interim_scores = {step: scores[member] for step, scores in sorted(wave.interim.items())
                                 if member in scores}
    return results


def _score_alive(model: StackedGan, configs: Sequence[TrialConfig], generators: Sequence[torch.Generator],
                 judge: MnistConvNet, active: torch.Tensor) -> dict[int, dict[str, object]]:
    """Scores of the members in ``active`` ([B] bool) on ``score_samples`` samples each, z from ``generators``
    (the model in eval mode, gradients off)."""
    first = configs[0]
    weight = next(model.parameters())
    device, dtype = weight.device, weight.dtype
    alive = [m for m in range(len(configs)) if active[m]]
    if not alive:
        return {}
    judge_device = next(judge.parameters()).device
    samples = []
    for start in range(0, first.score_samples, SCORE_CHUNK):
        count = min(SCORE_CHUNK, first.score_samples - start)
        z = draw_noise(generators, count, first.noise_dim, device, dtype)
        samples.append(model.generator(z)[alive].to(judge_device, torch.float32))
    return dict(zip(alive, score_image_sets(torch.cat(samples, dim=1), judge), strict=True))


@torch.no_grad()
def _finish(
    model: StackedGan,
    configs: Sequence[TrialConfig],
    streams: list[dict[str, torch.Generator]],
    judge: MnistConvNet,
    active: torch.Tensor,
    diverged_at: torch.Tensor,
    curves: torch.Tensor,
    keep_state: bool,
    started: float,
    resumed_from_step: int | None,
) -> list[MemberResult]:
    """Sample grids and scores (eval-mode batch norm) for the members that did not diverge; timings since
    ``started`` (a ``time.perf_counter()`` value) cover training and scoring."""
    first, device = configs[0], curves.device
    model.eval()
    dtype = curves.dtype
    z_grid = fixed_noise(GRID_SAMPLES, first.noise_dim).to(device, dtype).expand(len(configs), -1, -1)
    grids = to_uint8(model.generator(z_grid))
    scores = _score_alive(model, configs, [s["score"] for s in streams], judge, active)
    names = (
        ("loss_d", "loss_g", "energy_real", "energy_fake")
        if first.family == "ebgan"
        else ("loss_d", "loss_g", "logit_real", "logit_fake")
    )
    binned = {name: bin_means(curves[i], CURVE_POINTS) for i, name in enumerate(names)}
    elapsed = time.perf_counter() - started
    results = []
    for member, config in enumerate(configs):
        diverged = not bool(active[member])
        results.append(
            MemberResult(
                config=config,
                status="diverged" if diverged else "completed",
                steps=int(diverged_at[member]) + 1 if diverged else first.steps,
                scores=scores.get(member),
                curves={name: values[member] for name, values in binned.items()},
                sample_grid=None if diverged else grids[member],
                seconds=elapsed / len(configs),
                group_seconds=elapsed,
                group_size=len(configs),
                diverged_at_step=int(diverged_at[member]) if diverged else None,
                resumed_from_step=resumed_from_step,
                state=member_state(model, member) if keep_state else {},
            )
        )
    return results
