"""Train a group of semi-supervised members (LN, EBGAN-LN or the supervised MLP) as one stacked model.

Each step, for every member (Appendix D; Rasmus et al. 2015 where the paper is silent):
  LN        L = CE(corrupted pass of a labelled batch) + E(unlabelled batch)
  EBGAN-LN  L_D = CE(...) + mean[E(x) + [m_t - E(G(z))]^+],  then  L_G = mean E(G(z)) on the same z,
            while m_t > 0 (the generator stops when the margin reaches 0; the ladder trains on)
where E is recon_weight times the per-pixel squared error of the bottom-layer reconstruction (``ladder.energy``).
Both learning rates fall linearly to 0 from ``decay_start`` to the last step. The test error is measured with the
clean encoder and batch-norm statistics over ``bn_samples`` training images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ebgan_core.ladder import NoiseFedGenerator, StackedLadder, classification_cost
from ebgan_core.ladder_config import LadderConfig
from ebgan_core.losses import decayed_margin, margin_loss
from ebgan_core.models import G_INIT_STD, init_weights_
from ebgan_core.optim import StackedOptimizer
from ebgan_core.pi_mnist import PiMnist, labelled_indices
from ebgan_core.rng import derive_seed, real_batches
from ebgan_core.train import (
    CURVE_POINTS,
    GRID_SAMPLES,
    GROUP_STATE_FORMAT,
    Checkpointing,
    bin_means,
    check_group,
    check_resumable,
    draw_noise,
    member_keys,
)

STREAMS = ("init", "corruption", "noise", "labelled")
CURVES = ("class_cost", "recon_error", "energy_fake")

Progress = Callable[[int, int], None]


@dataclass
class LadderResult:
    """What one semi-supervised member produced."""

    config: LadderConfig
    status: str  # "completed" or "diverged"
    steps: int
    test_error: float | None  # percent of the 10,000 test images misclassified; None if diverged
    curves: dict[str, list[float]]  # class_cost, recon_error (unweighted, per pixel), energy_fake (EBGAN-LN)
    sample_grid: np.ndarray | None  # EBGAN-LN: uint8 [64, 28, 28] from fixed noise; else None
    seconds: float
    group_seconds: float
    group_size: int
    diverged_at_step: int | None = None
    interim_errors: dict[int, float] = field(default_factory=dict)  # step -> test error, before the end
    resumed_from_step: int | None = None  # the step its training resumed at from a checkpoint; None: uninterrupted
    state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # weights, B=1 slices


def lr_scale(step: int, steps: int, decay_start: int) -> float:
    """1 before ``decay_start``, then falling linearly to 0 at ``steps``."""
    if step < decay_start:
        return 1.0
    return (steps - step) / (steps - decay_start)


class LabelledOrder:
    """Endless index batches into a labelled set of ``count``: consecutive permutations, cut into batches (a set
    smaller than a batch fills it from the next permutations). Its state can be saved and restored."""

    def __init__(self, count: int, batch_size: int, generator: torch.Generator) -> None:
        self.count, self.batch_size, self.generator = count, batch_size, generator
        self.pending = torch.empty(0, dtype=torch.int64)

    def next(self) -> torch.Tensor:
        while len(self.pending) < self.batch_size:
            self.pending = torch.cat([self.pending, torch.randperm(self.count, generator=self.generator)])
        batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
        return batch

    def state(self) -> dict[str, torch.Tensor]:
        return {"pending": self.pending.clone(), "generator": self.generator.get_state()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.pending = state["pending"].clone()
        self.generator.set_state(state["generator"])


class _LadderGroup:
    """The training state of a group, one ``step()`` at a time."""

    def __init__(self, configs: Sequence[LadderConfig], data: PiMnist, device: torch.device, dtype: torch.dtype
                 ) -> None:
        first = configs[0]
        members = len(configs)
        self.configs, self.first, self.device, self.dtype = configs, first, device, dtype
        self.streams = [{s: torch.Generator(device=device).manual_seed(derive_seed(c.seed, c.config_hash(), s))
                         for s in STREAMS} for c in configs]
        init = [s["init"] for s in self.streams]
        self.ladder = StackedLadder(members, first.encoder_widths()).to(device)
        self.ladder.init_weights_(init)
        self.ladder.to(dtype)
        self.optimizer = StackedOptimizer(self.ladder.parameters(), ["adam"] * members, [c.lr for c in configs],
                                          (first.adam_beta1, first.adam_beta2), 0.0)
        self.generator = self.optimizer_g = None
        if first.adversarial:
            self.generator = NoiseFedGenerator(members, first.noise_dim, first.generator_widths()).to(device)
            init_weights_(self.generator, G_INIT_STD, init)
            self.generator.to(dtype)
            self.optimizer_g = StackedOptimizer(self.generator.parameters(), ["adam"] * members,
                                                [c.lr_g for c in configs], (first.adam_beta1, first.adam_beta2), 0.0)

        def column(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, device=device, dtype=dtype)

        self.noise_std = column([c.noise_std for c in configs])
        self.recon_weight = column([c.recon_weight for c in configs])
        self.margins = column([c.margin for c in configs]).unsqueeze(-1)
        self.margin_decays = column([float(c.margin_decay_steps) for c in configs]).unsqueeze(-1)
        picks = [labelled_indices(data.train_labels, c.labels, c.seed).to(device) for c in configs]
        self.labelled = [(data.train_images[p], data.train_labels[p]) for p in picks]
        self.label_order = [LabelledOrder(c.labels, first.batch_size, s["labelled"])
                            for c, s in zip(configs, self.streams, strict=True)]
        self.active = torch.ones(members, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((members,), -1, dtype=torch.int64, device=device)
        self.curves = torch.full((len(CURVES), first.steps, members), float("nan"), device=device)
        self.step_done = 0
        self.seconds_before = 0.0  # training time before a resume
        self.interim: dict[int, torch.Tensor] = {}  # step -> test errors [B]

    def _labelled_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        picks = [order.next().to(self.device) for order in self.label_order]
        images = torch.stack([imgs[p] for (imgs, _), p in zip(self.labelled, picks, strict=True)])
        labels = torch.stack([lbls[p] for (_, lbls), p in zip(self.labelled, picks, strict=True)])
        return images, labels

    def _corruption(self) -> list[torch.Generator]:
        return [s["corruption"] for s in self.streams]

    def _fake(self) -> torch.Tensor:
        first, generators = self.first, [s["noise"] for s in self.streams]
        return self.generator([draw_noise(generators, first.batch_size, first.noise_dim, self.device, self.dtype)
                               for _ in range(len(first.generator_widths()) + 1)])

    def step(self, unlabelled: torch.Tensor) -> None:
        """One ladder (discriminator) update; for EBGAN-LN while the margin is above 0, one generator update."""
        step, first = self.step_done, self.first
        scale = lr_scale(step, first.steps, first.decay_start)
        self.optimizer.lrs = [c.lr * scale for c in self.configs]
        if self.optimizer_g is not None:
            self.optimizer_g.lrs = [c.lr_g * scale for c in self.configs]
        images, labels = self._labelled_batch()
        logits = self.ladder.encode(images, self.noise_std, self._corruption())[1]
        class_cost = classification_cost(logits, labels)
        e_real = self.ladder.energy(unlabelled, self.noise_std, self._corruption(), self.recon_weight)[0]
        adversarial_now = self.generator is not None and step < first.margin_decay_steps
        if adversarial_now:
            fake = self._fake()
            e_fake = self.ladder.energy(fake.detach(), self.noise_std, self._corruption(), self.recon_weight)[0]
            margins = decayed_margin(self.margins, self.margin_decays, step)
            loss = class_cost + margin_loss(e_real, e_fake, margins)
            self.curves[2, step] = e_fake.detach().mean(-1)
        else:
            loss = class_cost + e_real.mean(-1)
        self.optimizer.zero_grad()
        loss.sum().backward()
        step_ok = self.active & torch.isfinite(loss)
        self.optimizer.step(step_ok)
        if adversarial_now:
            self.ladder.requires_grad_(False)
            loss_g = self.ladder.energy(fake, self.noise_std, self._corruption(), self.recon_weight)[0].mean(-1)
            self.optimizer_g.zero_grad()
            loss_g.sum().backward()
            self.ladder.requires_grad_(True)
            step_ok &= torch.isfinite(loss_g)
            self.optimizer_g.step(step_ok)
        self.diverged_at = torch.where(self.active & ~step_ok, step, self.diverged_at)
        self.active = step_ok
        self.curves[0, step] = class_cost.detach()
        self.curves[1, step] = e_real.detach().mean(-1) / self.recon_weight.clamp_min(1e-30)
        self.step_done += 1

    def state(self, seconds: float) -> dict[str, Any]:
        """Everything the next step depends on, as CPU copies; ``seconds``: training time so far."""
        parts = {"ladder": self.ladder, "generator": self.generator}
        optimizers = {"optimizer": self.optimizer, "optimizer_g": self.optimizer_g}
        return {
            "step": self.step_done, "seconds": seconds,
            "models": {name: {k: v.detach().cpu().clone() for k, v in part.state_dict().items()}
                       for name, part in parts.items() if part is not None},
            "optimizers": {name: o.state_dict() for name, o in optimizers.items() if o is not None},
            "streams": [{name: g.get_state() for name, g in member.items()} for member in self.streams],
            "label_order": [order.state() for order in self.label_order],
            "active": self.active.cpu(), "diverged_at": self.diverged_at.cpu(),
            "curves": self.curves[:, : self.step_done].cpu().clone(),
            "interim": {step: errors.cpu() for step, errors in self.interim.items()},
        }

    @torch.no_grad()
    def load(self, state: dict[str, Any]) -> None:
        """Continue from ``state()``'s output."""
        self.ladder.load_state_dict(state["models"]["ladder"])
        self.optimizer.load_state_dict(state["optimizers"]["optimizer"])
        if self.generator is not None:
            self.generator.load_state_dict(state["models"]["generator"])
            self.optimizer_g.load_state_dict(state["optimizers"]["optimizer_g"])
        for member, saved in zip(self.streams, state["streams"], strict=True):
            for name, generator in member.items():
                generator.set_state(saved[name])
        for order, saved in zip(self.label_order, state["label_order"], strict=True):
            order.load(saved)
        self.active = state["active"].to(self.device)
        self.diverged_at = state["diverged_at"].to(self.device)
        self.step_done = int(state["step"])
        self.curves[:, : self.step_done] = state["curves"].to(self.device)
        self.seconds_before = float(state["seconds"])
        self.interim = dict(state["interim"])

    def member_state(self, member: int) -> dict[str, dict[str, torch.Tensor]]:
        """Member ``member``'s ladder (and generator) tensors as B=1 slices."""
        parts = {"ladder": self.ladder, "generator": self.generator}
        return {name: {k: v[member : member + 1].detach().cpu().clone() for k, v in part.state_dict().items()}
                for name, part in parts.items() if part is not None}

    @torch.no_grad()
    def test_errors(self, data: PiMnist) -> torch.Tensor:
        """Test error (%) of every member: clean encoder, batch-norm statistics over ``bn_samples`` images."""
        order = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(
            derive_seed("bn-samples", self.first.data_seed)))[: self.first.bn_samples].to(self.device)
        stats = self.ladder.population_stats(data.train_images[order])
        predictions = self.ladder.predict(data.test_images, stats)
        return (predictions != data.test_labels).float().mean(dim=1) * 100

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray | None:
        """EBGAN-LN's generations from fixed noise (the same for every member and run), uint8 [B, 64, 28, 28]."""
        if self.generator is None:
            return None
        first = self.first
        layers = len(first.generator_widths()) + 1
        fixed = torch.randn(layers, GRID_SAMPLES, first.noise_dim,
                            generator=torch.Generator().manual_seed(derive_seed("fixed-noise", "table2")))
        noise = [layer.to(self.device, self.dtype).expand(len(self.configs), -1, -1) for layer in fixed]
        self.generator.eval()
        images = self.generator(noise)
        self.generator.train()
        pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return pixels.reshape(len(self.configs), GRID_SAMPLES, 28, 28)


def train_ladder_group(
    configs: Sequence[LadderConfig],
    data: PiMnist,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    eval_steps: Sequence[int] = (),
    keep_state: bool = False,
    dtype: torch.dtype = torch.float32,
    checkpointing: Checkpointing | None = None,
) -> list[LadderResult]:
    """Train B semi-supervised members at once; measure their test errors (also after each of ``eval_steps``,
    which leaves the rest of the result unchanged: the evaluation draws no random numbers). ``keep_state``
    returns each member's weights too; ``dtype=torch.float64`` is for numerical checks against references.
    ``checkpointing`` saves the group's state now and then and resumes from a saved one; a resumed group ends exactly
    as an uninterrupted one."""
    check_group(configs)
    first = configs[0]
    bad = [s for s in eval_steps if not 0 < s < first.steps]
    if bad:
        raise ValueError(f"eval_steps must lie in 1..steps-1 ({first.steps - 1}), got {bad[0]}")
    device = torch.device(device)
    data = data.to(device, dtype)
    group = _LadderGroup(configs, data, device, dtype)
    resume = checkpointing.resume if checkpointing else None
    if resume is not None:
        check_resumable(resume, configs)
        group.load(resume["run"])
    started = time.perf_counter() - group.seconds_before
    last_saved = time.monotonic()
    batches = real_batches(data.train_images, first.batch_size, first.data_seed, skip=group.step_done)
    while group.step_done < first.steps:
        group.step(next(batches).expand(len(configs), -1, -1))
        if progress is not None:
            progress(group.step_done, first.steps)
        if group.step_done in eval_steps:
            group.interim[group.step_done] = group.test_errors(data).cpu()
        if checkpointing is not None and time.monotonic() - last_saved >= checkpointing.every_s:
            checkpointing.save({"format": GROUP_STATE_FORMAT, "study": "table2", "members": member_keys(configs),
                                "run": group.state(time.perf_counter() - started)})
            last_saved = time.monotonic()
    interim = group.interim
    errors = group.test_errors(data).cpu()
    grids = group.sample_grid()
    curves = {name: bin_means(group.curves[i], CURVE_POINTS) for i, name in enumerate(CURVES)}
    active, diverged_at = group.active.cpu(), group.diverged_at.cpu()
    elapsed = time.perf_counter() - started
    results = []
    for member, config in enumerate(configs):
        diverged = not bool(active[member])
        results.append(LadderResult(
            config=config,
            status="diverged" if diverged else "completed",
            steps=int(diverged_at[member]) + 1 if diverged else first.steps,
            test_error=None if diverged else float(errors[member]),
            curves={name: values[member] for name, values in curves.items()},
            sample_grid=None if diverged or grids is None else grids[member],
            seconds=elapsed / len(configs),
            group_seconds=elapsed,
            group_size=len(configs),
            diverged_at_step=int(diverged_at[member]) if diverged else None,
            interim_errors={step: float(values[member]) for step, values in sorted(interim.items())
                            if bool(active[member])},
            resumed_from_step=None if resume is None else int(resume["run"]["step"]),
            state=group.member_state(member) if keep_state else {},
        ))
    return results
