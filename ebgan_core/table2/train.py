"""Table 2's part of a group: semi-supervised members (LN, EBGAN-LN or the supervised MLP), trained by the shared
group runner.

Each step, for every member (Appendix D; Rasmus et al. 2015 where the paper is silent):
  LN        L = CE(corrupted pass of a labelled batch) + E(unlabelled batch)
  EBGAN-LN  L_D = CE(...) + mean[E(x) + [m_t - E(G(z))]^+],  then  L_G = mean E(G(z)) on the same z,
            while m_t > 0 (the generator stops when the margin reaches 0; the ladder trains on)
where E is recon_weight times the per-pixel squared error of the bottom-layer reconstruction (``ladder.energy``).
Both learning rates fall linearly to 0 from ``decay_start`` to the last step. The score is the test error, measured
with the clean encoder and batch-norm statistics over ``bn_samples`` training images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np
import torch

from ebgan_core.group import GroupModel, MemberResult, RunOptions, Scores, run_group
from ebgan_core.losses import decayed_margin, margin_loss
from ebgan_core.optim import StackedOptimizer
from ebgan_core.rng import derive_seed, draw_noise
from ebgan_core.stacked import init_weights_
from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.footprint import member_bytes
from ebgan_core.table2.ladder import NoiseFedGenerator, StackedLadder, classification_cost
from ebgan_core.table2.pi_mnist import PiMnist, labelled_indices

GRID_SAMPLES = 64  # EBGAN-LN's generations from fixed noise per member (an 8x8 grid)
G_INIT_STD = 0.02  # the generator's weights, as Table 1's
STREAMS = ("init", "corruption", "noise", "labelled")
CURVES = ("class_cost", "recon_error", "energy_fake")


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


class LadderGroup(GroupModel, study="table2", config_type=LadderConfig, streams=STREAMS, member_bytes=member_bytes):
    """Semi-supervised members of one shape: stacked ladders (and EBGAN-LN's generators) with their optimisers."""

    curve_names = CURVES

    def __init__(self, configs: Sequence[LadderConfig], streams: list[dict[str, torch.Generator]],
                 device: torch.device, dtype: torch.dtype, data: PiMnist) -> None:
        super().__init__(configs, streams, device, dtype)
        first, members, self.data = configs[0], len(configs), data
        init = [s["init"] for s in streams]
        with torch.device(device):  # built where it trains, with no host copy to upload
            self.ladder = StackedLadder(members, first.encoder_widths())
        self.ladder.init_weights_(init)
        self.ladder.to(dtype)
        self.optimizer = StackedOptimizer(self.ladder.parameters(), ["adam"] * members, [c.lr for c in configs],
                                          (first.adam_beta1, first.adam_beta2), 0.0)
        self.generator = self.optimizer_g = None
        if first.adversarial:
            with torch.device(device):
                self.generator = NoiseFedGenerator(members, first.noise_dim, first.generator_widths())
            init_weights_(self.generator, G_INIT_STD, init)
            self.generator.to(dtype)
            self.optimizer_g = StackedOptimizer(self.generator.parameters(), ["adam"] * members,
                                                [c.lr_g for c in configs], (first.adam_beta1, first.adam_beta2), 0.0)
        self.noise_std = self.member_values([c.noise_std for c in configs])
        self.recon_weight = self.member_values([c.recon_weight for c in configs])
        self.margins = self.member_values([c.margin for c in configs]).unsqueeze(-1)
        self.margin_decays = self.member_values([float(c.margin_decay_steps) for c in configs]).unsqueeze(-1)
        picks = [labelled_indices(data.train_labels, c.labels, c.seed).to(device) for c in configs]
        self.labelled = [(data.train_images[p], data.train_labels[p]) for p in picks]
        self.label_order = [LabelledOrder(c.labels, first.batch_size, s["labelled"])
                            for c, s in zip(configs, streams, strict=True)]

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

    def step(self, step: int, unlabelled: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One ladder (discriminator) update; for EBGAN-LN while the margin is above 0, one generator update."""
        first = self.first
        scale = lr_scale(step, first.steps, first.decay_start)
        self.optimizer.lrs = [c.lr * scale for c in self.configs]
        if self.optimizer_g is not None:
            self.optimizer_g.lrs = [c.lr_g * scale for c in self.configs]
        images, labels = self._labelled_batch()
        logits = self.ladder.encode(images, self.noise_std, self._corruption())[1]
        class_cost = classification_cost(logits, labels)
        e_real = self.ladder.energy(unlabelled, self.noise_std, self._corruption(), self.recon_weight)[0]
        adversarial_now = self.generator is not None and step < first.margin_decay_steps
        e_fake_mean = torch.full_like(class_cost, float("nan"))
        if adversarial_now:
            fake = self._fake()
            e_fake = self.ladder.energy(fake.detach(), self.noise_std, self._corruption(), self.recon_weight)[0]
            margins = decayed_margin(self.margins, self.margin_decays, step)
            loss = class_cost + margin_loss(e_real, e_fake, margins)
            e_fake_mean = e_fake.detach().mean(-1)
        else:
            loss = class_cost + e_real.mean(-1)
        self.optimizer.zero_grad()
        loss.sum().backward()
        finite = active & torch.isfinite(loss)
        self.optimizer.step(finite)
        if adversarial_now:
            self.ladder.requires_grad_(False)
            loss_g = self.ladder.energy(fake, self.noise_std, self._corruption(), self.recon_weight)[0].mean(-1)
            self.optimizer_g.zero_grad()
            loss_g.sum().backward()
            self.ladder.requires_grad_(True)
            finite &= torch.isfinite(loss_g)
            self.optimizer_g.step(finite)
        recon_error = e_real.detach().mean(-1) / self.recon_weight.clamp_min(1e-30)
        return finite, torch.stack([class_cost.detach(), recon_error, e_fake_mean])

    @torch.no_grad()
    def scores(self, alive: list[int], step: int | None, samples: int | None = None) -> dict[int, Scores]:
        """Test error (%) of the members ``alive`` on the 10,000 test images (``samples`` does not apply): clean
        encoder, batch-norm statistics over ``bn_samples`` training images (no random numbers drawn from the members'
        streams)."""
        if not alive:
            return {}
        data = self.data
        order = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(
            derive_seed("bn-samples", self.first.data_seed)))[: self.first.bn_samples].to(self.device)
        stats = self.ladder.population_stats(data.train_images[order])
        predictions = self.ladder.predict(data.test_images, stats)
        errors = ((predictions != data.test_labels).float().mean(dim=1) * 100).cpu()
        return {member: {"test_error": float(errors[member])} for member in alive}

    @torch.no_grad()
    def sample_grids(self) -> np.ndarray | None:
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

    def _parts(self) -> dict[str, torch.nn.Module]:
        return {"ladder": self.ladder} | ({} if self.generator is None else {"generator": self.generator})

    def state_dict(self) -> dict[str, Any]:
        optimizers = {"optimizer": self.optimizer, "optimizer_g": self.optimizer_g}
        return {
            "weights": {name: {k: v.detach().cpu().clone() for k, v in part.state_dict().items()}
                        for name, part in self._parts().items()},
            "optimizers": {name: o.state_dict() for name, o in optimizers.items() if o is not None},
            "label_order": [order.state() for order in self.label_order],
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self._parts().items():
            part.load_state_dict(state["weights"][name])
        self.optimizer.load_state_dict(state["optimizers"]["optimizer"])
        if self.optimizer_g is not None:
            self.optimizer_g.load_state_dict(state["optimizers"]["optimizer_g"])
        for order, saved in zip(self.label_order, state["label_order"], strict=True):
            order.load(saved)

    def member_state(self, member: int) -> dict[str, dict[str, torch.Tensor]]:
        return {name: {k: v[member : member + 1].detach().cpu().clone() for k, v in part.state_dict().items()}
                for name, part in self._parts().items()}


def train_ladder_group(configs: Sequence[LadderConfig], data: PiMnist, **options: Unpack[RunOptions]
                       ) -> list[MemberResult]:
    """Train B semi-supervised members at once on ``data`` and measure their test errors (``scores['test_error']``;
    along the way after each of ``score_steps``, which draws no random numbers and so leaves the rest of the result
    unchanged); ``options`` and the rest: ``ebgan_core.group.run_group``."""
    data = data.to(torch.device(options.get("device", "cpu")), options.get("dtype", torch.float32))
    return run_group(LadderGroup, configs, data.train_images, {"data": data}, **options)
