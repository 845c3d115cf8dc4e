"""Table 1's part of a group: members of one family that share layer shapes, trained by the shared group runner.

Each step: one discriminator update (``disc_iters`` of them, each on its own real batch and z), then one generator
update on the last z (Section 2.1), with the losses of the members' family (``ebgan_core.table1.families``), for example
  EBGAN  L_D = D(x) + [m - D(G(z))]^+ ,  L_G = D(G(z)) + lambda_PT * f_PT(Enc(G(z)))
  GAN    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0),  L_G = -log sigmoid(D(G(z)))
and the family's gradient penalty and what follows a discriminator update (WGAN's clipping, BEGAN's control), if any.
Members are scored by I' (and the other scores of ``ebgan_core.table1.scoring``) with the pinned judge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np
import torch

from ebgan_core.cuda_graph import CapturePlan
from ebgan_core.data import IMAGE_SIDE
from ebgan_core.fid import FidScorer
from ebgan_core.group import GroupModel, MemberResult, RunOptions, Scores, run_group
from ebgan_core.images import resized_square, to_uint8
from ebgan_core.optim import StackedOptimizer
from ebgan_core.precision import bf16_gemm_for
from ebgan_core.rng import derive_seed, draw_noise, fixed_noise, member_generators
from ebgan_core.stacked import StackedBatchNorm, init_weights_
from ebgan_core.stacked_conv import StackedBatchNorm2d
from ebgan_core.table1.classifier import MnistConvNet
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES
from ebgan_core.table1.footprint import SCORE_CHUNK, member_bytes
from ebgan_core.table1.models import StackedGan
from ebgan_core.table1.scoring import at_judge_size, score_image_sets

GRID_SAMPLES = 64  # fixed-z samples per member (an 8x8 grid)
STREAMS = ("init", "noise", "dropout", "score")


def build_group(
    configs: Sequence[TrialConfig], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    streams: list[dict[str, torch.Generator]] | None = None,
) -> tuple[StackedGan, list[dict[str, torch.Generator]]]:
    """The stacked model with each member initialised from its own stream, and each member's generators (``streams``,
    made here when not given).

    ``dtype`` is that of weights and activations; a ``bf16`` group's matmuls run in bfloat16 (native or emulated,
    ``ebgan_core.precision``) over float32 weights.
    """
    if configs[0].precision == "bf16" and dtype != torch.float32:
        raise ValueError(f"precision bf16 keeps float32 master weights; got dtype {dtype}")
    if streams is None:
        streams = [member_generators(c, STREAMS, device) for c in configs]
    with torch.device(device):  # built where it trains: no host copy to upload (340 ms for 64 fig4b members on CUDA)
        model = StackedGan(configs, [s["dropout"] for s in streams])
    g_std, d_std = model.init_stds
    init_weights_(model.generator, g_std, [s["init"] for s in streams])
    init_weights_(model.discriminator, d_std, [s["init"] for s in streams])
    model = model.to(dtype)
    if configs[0].precision == "bf16":
        model.use_gemm(bf16_gemm_for(device))
    return model, streams


class GanGroup(GroupModel, study="table1", config_type=TrialConfig, streams=STREAMS, member_bytes=member_bytes):
    """EBGAN or GAN members of one shape: a stacked generator and discriminator with per-member optimisers."""

    def __init__(self, configs: Sequence[TrialConfig], streams: list[dict[str, torch.Generator]],
                 device: torch.device, dtype: torch.dtype, judge: MnistConvNet, fid: FidScorer | None = None) -> None:
        super().__init__(configs, streams, device, dtype)
        first, self.judge, self.fid = configs[0], judge, fid
        self.family = FAMILIES[first.family]
        self.model, _ = build_group(configs, device, dtype, streams)
        self.curve_names = self.family.curve_names()
        self.parameters = self.family.member_parameters(configs, self.member_values)
        betas = ([c.adam_beta1 for c in configs], first.adam_beta2)
        lrs = [c.lr for c in configs]
        self.optimizer_d = StackedOptimizer(self.model.discriminator.parameters(), [c.optim_d for c in configs], lrs,
                                            betas, first.sgd_momentum)
        self.optimizer_g = StackedOptimizer(self.model.generator.parameters(), [c.optim_g for c in configs], lrs,
                                            betas, first.sgd_momentum)
        # The step runs the generator once for the last discriminator update and the generator's, where the textbook
        # step runs it twice on the same z: its batch norm counts that batch twice, so the running statistics are the
        # same.
        self.generator_norms = [m for m in self.model.generator.modules()
                                if isinstance(m, StackedBatchNorm | StackedBatchNorm2d)]
        self._count_generator_runs(2)
        self.model.train()

    def _count_generator_runs(self, runs: int) -> None:
        for layer in self.generator_norms:
            layer.running_updates = runs

    @classmethod
    def one_cpu_thread(cls, configs: Sequence[TrialConfig]) -> bool:
        """Convolutional members train on one CPU thread: the same numbers on any executor or worker size."""
        return configs[0].architecture == "conv"

    def real_per_step(self) -> int:
        """A real batch for each discriminator update."""
        return self.first.batch_size * self.first.disc_iters

    def step(self, step: int | torch.Tensor, real: torch.Tensor, active: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``disc_iters`` discriminator updates, each on its own real batch and z, then one generator update on the
        last z and so on the last fake batch: the generator runs once for both (the discriminator's update leaves it as
        it was). A gradient penalty draws its random numbers from the members' noise streams, after z."""
        model, first, family = self.model, self.first, self.family
        noise = [s["noise"] for s in self.streams]
        finite = active
        for update, real_batch in enumerate(real.split(first.batch_size, dim=1)):
            last = update == first.disc_iters - 1
            z = draw_noise(noise, first.batch_size, first.noise_inputs(), self.device, self.dtype)
            if first.disc_iters > 1:
                self._count_generator_runs(2 if last else 1)
            with contextlib.nullcontext() if last else torch.no_grad():
                fake = model.generator(z)
            # Discriminator update on real and (detached) fake batches.
            on_real, on_fake = model.discriminator(real_batch), model.discriminator(fake.detach())
            loss_d = family.discriminator_loss(on_real, on_fake, self.parameters, step)
            if family.penalty is not None:
                loss_d = loss_d + family.penalty(model.discriminator, real_batch, fake.detach(), self.parameters, noise)
            self.optimizer_d.zero_grad()
            loss_d.sum().backward()
            finite = finite & torch.isfinite(loss_d)
            self.optimizer_d.step(finite)
            if family.after_discriminator_update is not None:
                family.after_discriminator_update(model.discriminator, on_real, on_fake, self.parameters, finite)
        real_stat, fake_stat = on_real.value.mean(-1), on_fake.value.mean(-1)
        # Generator update through the (frozen) discriminator; unfrozen again even if this raises (a capture that
        # fails part-way, ``ebgan_core.cuda_graph``, goes on with eager steps).
        model.discriminator.requires_grad_(False)
        try:
            loss_g = family.generator_loss(model.discriminator(fake), self.parameters)
            self.optimizer_g.zero_grad()
            loss_g.sum().backward()
        finally:
            model.discriminator.requires_grad_(True)
        finite &= torch.isfinite(loss_g)
        self.optimizer_g.step(finite)
        return finite, torch.stack([loss_d.detach(), loss_g.detach(), real_stat.detach(), fake_stat.detach()])

    def capture_plan(self) -> CapturePlan | None:
        """Every member's noise and dropout generators and both optimisers' step counts. None with bfloat16 GEMMs
        (their weight copies are remade on the host's say-so), the CPU's fused optimiser (it reads the active
        members on the host) or a gradient penalty (a double backward, not tried under capture)."""
        if (self.first.precision == "bf16" or "fused" in (self.optimizer_d.update, self.optimizer_g.update)
                or self.family.penalty is not None):
            return None
        return CapturePlan([s[name] for s in self.streams for name in ("noise", "dropout")],
                           [(self.optimizer_d, "steps"), (self.optimizer_g, "steps")])

    @torch.no_grad()
    def scores(self, alive: list[int], step: int | None, samples: int | None = None) -> dict[int, Scores]:
        """I' and the other scores on ``score_samples`` samples each (along the way: ``samples``, if given), the model
        in eval mode; at the end from the members' score streams, along the way from streams of the step's own. Members
        trained on an image folder get the FID against it where the group has a ``fid`` scorer, else none: the judge
        knows MNIST's digits only."""
        on_folder = self.first.dataset != "mnist"
        if not alive or (on_folder and self.fid is None):
            return {}
        count = samples or self.first.score_samples
        if step is None:
            generators = [s["score"] for s in self.streams]
        else:
            generators = [torch.Generator(device=self.device).manual_seed(
                derive_seed(c.seed, c.config_hash(), "score", step)) for c in self.configs]
        self.model.eval()
        samples = []
        for start in range(0, count, SCORE_CHUNK):
            z = draw_noise(generators, min(SCORE_CHUNK, count - start), self.first.noise_inputs(), self.device,
                           self.dtype)
            samples.append(self.model.generator(z)[alive].to(next(self.judge.parameters()).device, torch.float32))
        self.model.train()
        generated = torch.cat(samples, dim=1)
        if on_folder:
            return {member: self.fid.score(images, self.first.channels) for member, images in zip(alive, generated,
                                                                                                  strict=True)}
        return dict(zip(alive, score_image_sets(at_judge_size(generated), self.judge), strict=True))

    @torch.no_grad()
    def sample_grids(self) -> np.ndarray:
        """Every member's 8x8 grid from the fixed z (eval-mode batch norm), uint8 [B, 64, side, side] ([B, 64, 3, side,
        side] in colour)."""
        self.model.eval()
        z = fixed_noise(GRID_SAMPLES, self.first.noise_inputs()).to(self.device, self.dtype)
        images = self.model.generator(z.expand(len(self.configs), -1, -1))
        if self.first.channels > 1:
            images = images.unflatten(-1, (self.first.channels, -1))
        grids = to_uint8(images, self.first.image_side())
        self.model.train()
        return grids

    def state_dict(self) -> dict[str, Any]:
        return {"weights": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
                "optimizer_d": self.optimizer_d.state_dict(), "optimizer_g": self.optimizer_g.state_dict(),
                "family_state": {name: self.parameters[name].cpu().clone() for name in self.family.state}}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["weights"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        for name in self.family.state:
            self.parameters[name].copy_(state["family_state"][name])

    def member_state(self, member: int) -> dict[str, dict[str, torch.Tensor]]:
        return {part: {k: v[member : member + 1].detach().cpu().clone()
                       for k, v in getattr(self.model, part).state_dict().items()}
                for part in ("generator", "discriminator")}


def at_training_size(images: torch.Tensor, side: int) -> torch.Tensor:
    """MNIST images [N, 1, 32, 32] (or [N, 1024]) resized to ``side`` x ``side`` (bilinear, antialiased when
    smaller), flattened [N, side * side]; as they are at 32."""
    return resized_square(images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), side).flatten(1)


def train_group(configs: Sequence[TrialConfig], data: torch.Tensor, judge: MnistConvNet, fid: FidScorer | None = None,
                **options: Unpack[RunOptions]) -> list[MemberResult]:
    """Train B Table 1 members at once on ``data`` in [-1, 1] (MNIST [N, 1, 32, 32] or [N, 1024], resized to a
    convolutional config's size; an image folder's images [N, C, S, S] at the configs' channels and size) and score
    them with ``judge`` on ``score_samples`` samples each (members on an image folder: by ``fid``, if given);
    ``options`` and the rest: ``ebgan_core.group.run_group``."""
    first = configs[0]
    if first.dataset == "mnist":
        data = at_training_size(data, first.image_side())
    elif data[0].numel() != first.channels * first.image_side() ** 2:
        raise ValueError(f"the image folder's images are {tuple(data.shape[1:])}; the configs train on "
                         f"{first.channels} x {first.image_side()} x {first.image_side()}")
    return run_group(GanGroup, configs, data, {"judge": judge, "fid": fid}, **options)
