"""Stacked training: parity with single runs and with a plain PyTorch reference; divergence; reproducibility."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ebgan_core.rng import member_generators, real_batches
from ebgan_core.stacked import StackedBatchNorm, StackedLinear
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES
from ebgan_core.table1.footprint import member_bytes
from ebgan_core.table1.models import FlatImageGenerator
from ebgan_core.table1.train import STREAMS, GanGroup, build_group, train_group

TINY = TrialConfig(
    family="ebgan",
    n_layer_g=3,
    size_g=48,
    n_layer_d=3,
    size_d=32,
    batch_size=16,
    noise_dim=16,
    steps=12,
    score_samples=64,
)


@pytest.fixture(scope="module")
def real_subset(mnist_train) -> torch.Tensor:
    return mnist_train[0][:4096]


def group_of_24() -> list[TrialConfig]:
    """Every per-member setting varies: optimisers, lr, dropout, margin, pt weight, seed."""
    configs = []
    for (optim_d, optim_g), lr, dropout in itertools.product(
        itertools.product(("adam", "sgd"), repeat=2), (1e-3, 1e-2), (False, True)
    ):
        configs.append(TINY.replace(optim_d=optim_d, optim_g=optim_g, lr=lr, dropout_d=dropout))
    for index in range(8):
        configs.append(
            TINY.replace(
                margin=2.0 + index,
                pt_weight=0.1 * (index % 2),
                dropout_d=index % 3 == 0,
                dropout_rate=0.3,
                seed=index + 1,
            )
        )
    assert len(configs) == 24
    return configs


# A member alone and the same member in a group take the same arithmetic (ebgan_core.determinism, stacked_matmul,
# pointwise, the optimiser's whole vectors), so in float64 they are compared bit for bit: rounding cannot hide a bug
# there. Float32 compares them only where the training does not amplify a last-bit difference: a one-ulp nudge of
# every initial weight grows, over the tests' 12 steps, to O(1) in members with an Adam discriminator (lr 1e-2, or
# lr 1e-3 without dropout) but stays within 1.3e-3 of each tensor's largest magnitude in the others
# (``benchmarks/group_parity.py --growth``). FLOAT32_RTOL is 8x that, and test_the_parity_checks_catch_stacking_bugs
# shows it still catches real stacking bugs.
FLOAT32_RTOL = 1e-2
FLOAT32_COMPARED = (1, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 22)  # SGD discriminators, or Adam at 1e-3 with dropout


def assert_same_member(grouped, alone, rtol: float | None = None):
    """The same member: bit for bit (``rtol`` None: every weight and batch-norm statistic, the scores and the sample
    grid), or each tensor within ``rtol`` of its largest magnitude, I' within ``rtol``, the grid within one level."""
    assert grouped.status == alone.status == "completed"
    for part in ("generator", "discriminator"):
        for name, tensor in alone.state[part].items():
            if rtol is None:
                assert torch.equal(grouped.state[part][name], tensor), f"{part}.{name} differs"
            else:
                torch.testing.assert_close(grouped.state[part][name], tensor, rtol=rtol,
                                           atol=rtol * tensor.abs().max().item(), msg=f"{part}.{name}")
    if rtol is None:
        assert grouped.scores == alone.scores and (grouped.sample_grid == alone.sample_grid).all()
    else:
        assert grouped.scores["i_prime"] == pytest.approx(alone.scores["i_prime"], rel=rtol, abs=1e-6)
        assert np.abs(grouped.sample_grid.astype(int) - alone.sample_grid.astype(int)).max() <= 1


@pytest.mark.slow
def test_every_member_of_a_group_of_24_is_itself_alone_bit_for_bit_in_float64(real_subset, judge):
    configs = group_of_24()
    grouped = train_group(configs, real_subset, judge, keep_state=True, dtype=torch.float64)
    assert [r.config for r in grouped] == configs and all(r.group_size == 24 for r in grouped)
    for index, config in enumerate(configs):
        (alone,) = train_group([config], real_subset, judge, keep_state=True, dtype=torch.float64)
        assert_same_member(grouped[index], alone)
    # Members really differ from each other (the comparison above is not trivially true).
    assert not torch.equal(
        grouped[0].state["generator"]["output.weight"], grouped[1].state["generator"]["output.weight"]
    )


@pytest.mark.slow
def test_members_of_a_group_of_24_match_them_alone_in_float32(real_subset, judge):
    configs = group_of_24()
    grouped = train_group(configs, real_subset, judge, keep_state=True)
    for index in FLOAT32_COMPARED:
        (alone,) = train_group([configs[index]], real_subset, judge, keep_state=True)
        assert_same_member(grouped[index], alone, rtol=FLOAT32_RTOL)


def _swap_learning_rates(group: GanGroup) -> None:
    """A stacking bug: in a group, members 8 and 10 (SGD discriminators, lr 1e-3 and 1e-2) update with each other's
    rate."""
    if len(group.configs) == 1:
        return
    for optimizer in (group.optimizer_d, group.optimizer_g):
        optimizer.lrs[8], optimizer.lrs[10] = optimizer.lrs[10], optimizer.lrs[8]


def _share_batch_norm_statistics(norm: StackedBatchNorm, x: torch.Tensor) -> torch.Tensor:
    """A stacking bug: batch norm takes its batch statistics over every member's samples at once."""
    mean = x.mean(dim=(0, 1), keepdim=True)
    var = (x - mean).square().mean(dim=(0, 1), keepdim=True)
    return (x - mean) * (torch.rsqrt(var + norm.eps) * norm.weight) + norm.bias


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["learning rates swapped", "batch-norm statistics shared"])
def test_the_parity_checks_catch_stacking_bugs(bug, real_subset, judge, monkeypatch):
    """Both comparisons above fail for a member they compare in a group with a real stacking bug."""
    if bug == "learning rates swapped":
        original = GanGroup.__init__

        def buggy_init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            _swap_learning_rates(self)

        monkeypatch.setattr(GanGroup, "__init__", buggy_init)
    else:
        monkeypatch.setattr(StackedBatchNorm, "forward", _share_batch_norm_statistics)
    configs, member = group_of_24(), 8
    assert member in FLOAT32_COMPARED
    for dtype, rtol in ((torch.float64, None), (torch.float32, FLOAT32_RTOL)):
        grouped = train_group(configs, real_subset, judge, keep_state=True, dtype=dtype)
        (alone,) = train_group([configs[member]], real_subset, judge, keep_state=True, dtype=dtype)
        with pytest.raises(AssertionError):
            assert_same_member(grouped[member], alone, rtol)


@pytest.mark.slow
def test_gan_members_in_a_group_are_themselves_alone(real_subset, judge):
    gan = TINY.replace(family="gan", margin=10.0)
    configs = [
        gan.replace(optim_d=d, optim_g=g, lr=lr)
        for d, g, lr in (("adam", "adam", 1e-3), ("sgd", "sgd", 1e-2), ("sgd", "adam", 1e-4), ("adam", "sgd", 1e-2))
    ]
    grouped = train_group(configs, real_subset, judge, keep_state=True, dtype=torch.float64)
    for index, config in enumerate(configs):
        (alone,) = train_group([config], real_subset, judge, keep_state=True, dtype=torch.float64)
        assert_same_member(grouped[index], alone)


# --- A plain PyTorch reference: nn.Linear, nn.BatchNorm1d, torch.optim, losses written out. ---------------


def plain_linear(layer: StackedLinear) -> nn.Linear:
    plain = nn.Linear(
        layer.weight.shape[1], layer.weight.shape[2], bias=layer.bias is not None, dtype=layer.weight.dtype
    )
    with torch.no_grad():
        plain.weight.copy_(layer.weight[0].T)
        if layer.bias is not None:
            plain.bias.copy_(layer.bias[0, 0])
    return plain


def plain_norm(norm: StackedBatchNorm) -> nn.BatchNorm1d:
    plain = nn.BatchNorm1d(norm.weight.shape[-1], dtype=norm.weight.dtype)
    with torch.no_grad():
        plain.weight.copy_(norm.weight[0, 0])
        plain.bias.copy_(norm.bias[0, 0])
        plain.running_mean.copy_(norm.running_mean[0, 0])
        plain.running_var.copy_(norm.running_var[0, 0])
    return plain


def plain_hidden(stack) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for linear, norm in zip(stack.linears, stack.norms, strict=True):
        layers.append(plain_linear(linear))
        if isinstance(norm, StackedBatchNorm):
            layers.append(plain_norm(norm))
        layers.append(nn.ReLU())
    return layers


def plain_nets(model) -> dict[str, nn.Module]:
    if isinstance(model.generator, FlatImageGenerator):  # the convolutional networks
        from test_stacked_conv import plain_conv_nets

        return plain_conv_nets(model)
    nets = {"G": nn.Sequential(*plain_hidden(model.generator.hidden), plain_linear(model.generator.output), nn.Tanh())}
    if FAMILIES[model.family].discriminator.startswith("auto-encoder"):
        nets["Enc"] = nn.Sequential(*plain_hidden(model.discriminator.encoder))
        nets["Dec"] = plain_linear(model.discriminator.decoder)
    else:
        nets["D"] = nn.Sequential(*plain_hidden(model.discriminator.hidden), plain_linear(model.discriminator.output))
    return nets


def plain_optimizer(kind: str, params, config: TrialConfig):
    if kind == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2))
    return torch.optim.SGD(params, lr=config.lr, momentum=config.sgd_momentum)


def plain_pt(code: torch.Tensor) -> torch.Tensor:
    n = code.shape[0]
    unit = code / code.norm(dim=1, keepdim=True).clamp_min(1e-12)  # a zero code has cosine 0 (our convention)
    similarity = (unit @ unit.T) ** 2
    return (similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1))


# Each family's losses written out for one plain model: (out_real, out_fake, config) -> L_D and (out, code, config) ->
# L_G, where out is the energy (an auto-encoder's) or the output (a binary discriminator's) of each sample.
PLAIN_LOSSES = {
    "ebgan": (lambda out_real, out_fake, config: (out_real + (config.margin - out_fake).clamp(min=0)).mean(),
              lambda out, code, config: out.mean() + (config.pt_weight * plain_pt(code) if config.pt_weight else 0.0)),
    "gan": (lambda out_real, out_fake, config: F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)),
            lambda out, code, config: F.binary_cross_entropy_with_logits(out, torch.ones_like(out))),
}


def plain_training(config: TrialConfig, dtype: torch.dtype):
    """What a textbook loop starts from: the config's plain nets with the stacked model's initial weights, the
    discriminator's parameters, both torch.optim optimisers and the member's noise generator."""
    nets = plain_nets(build_group([config], dtype=dtype)[0])
    d_params = [p for name, net in nets.items() if name != "G" for p in net.parameters()]
    opt_d = plain_optimizer(config.optim_d, d_params, config)
    opt_g = plain_optimizer(config.optim_g, nets["G"].parameters(), config)
    return nets, d_params, opt_d, opt_g, member_generators(config, STREAMS)["noise"]


def reference_run(config: TrialConfig, data: torch.Tensor, dtype: torch.dtype, losses=None) -> dict[str, nn.Module]:
    """The same config trained with textbook PyTorch from the same initial weights, real batches and z, with
    ``losses`` (default: its family's of PLAIN_LOSSES)."""
    loss_d_of, loss_g_of = losses or PLAIN_LOSSES[config.family]
    nets, d_params, opt_d, opt_g, noise = plain_training(config, dtype)
    batches = real_batches(data.reshape(data.shape[0], -1), config.batch_size, config.data_seed)

    def discriminate(x):
        if "Enc" in nets:
            code = nets["Enc"](x)
            return ((nets["Dec"](code) - x) ** 2).sum(dim=1).sqrt(), code
        return nets["D"](x).squeeze(1), None

    for _ in range(config.steps):
        x = next(batches).to(dtype)
        z = torch.randn(config.batch_size, config.noise_inputs(), generator=noise).to(dtype)
        with torch.no_grad():
            fake = nets["G"](z)
        out_real, _ = discriminate(x)
        out_fake, _ = discriminate(fake)
        loss_d = loss_d_of(out_real, out_fake, config)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        plain_generator_update(d_params, opt_g, lambda z=z: loss_g_of(*discriminate(nets["G"](z)), config))
    return nets


def plain_generator_update(d_params, opt_g, loss_of) -> None:
    """The textbook generator update: the discriminator frozen while ``loss_of()`` is computed and back-propagated."""
    for p in d_params:
        p.requires_grad_(False)
    loss_g = loss_of()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)


def assert_matches_reference(config: TrialConfig, data: torch.Tensor, judge, dtype: torch.dtype, rtol: float,
                             losses=None, reference=None):
    """Every weight and batch-norm statistic, relative to the tensor's largest magnitude, against ``reference(config,
    data, dtype)``'s plain nets (default: ``reference_run`` with ``losses``)."""
    (ours,) = train_group([config], data, judge, keep_state=True, dtype=dtype)
    assert ours.status == "completed" and ours.steps == config.steps >= 20
    model, _ = build_group([config], dtype=dtype)
    model.generator.load_state_dict(ours.state["generator"])
    model.discriminator.load_state_dict(ours.state["discriminator"])
    expected = reference_run(config, data, dtype, losses) if reference is None else reference(config, data, dtype)
    for name, net in plain_nets(model).items():
        theirs = expected[name].state_dict()
        for key, value in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            scale = theirs[key].abs().max().item()
            torch.testing.assert_close(value, theirs[key], rtol=rtol, atol=rtol * scale, msg=f"{name}.{key}")


# Float32: GAN training with Adam at lr >= 1e-3 amplifies rounding chaotically (two correct float32 codes that
# only sum in another order drift apart to O(1) within ~20 steps, after agreeing to ~1e-6 at step 1). So the
# float32 comparison runs where rounding is not amplified, and the chaotic regime is compared in float64,
# where any difference of formula (not of rounding) would show up at once.
@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        TINY.replace(steps=24, lr=1e-4, pt_weight=0.1),
        TINY.replace(family="gan", steps=24, optim_d="sgd", optim_g="sgd", lr=1e-2),
        TINY.replace(family="gan", steps=24, optim_d="sgd", optim_g="adam", lr=1e-4, sgd_momentum=0.9),
    ],
    ids=["ebgan-pt-adam", "gan-sgd", "gan-sgd-momentum-adam"],
)
def test_float32_matches_plain_pytorch(config, real_subset, judge):
    assert_matches_reference(config, real_subset, judge, torch.float32, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        TINY.replace(steps=24, lr=2e-3, pt_weight=0.1),
        TINY.replace(family="gan", steps=24, optim_d="sgd", optim_g="adam", lr=1e-2, sgd_momentum=0.9),
    ],
    ids=["ebgan-pt-adam", "gan-sgd-momentum-adam"],
)
def test_float64_matches_plain_pytorch_in_the_chaotic_regime(config, real_subset, judge):
    assert_matches_reference(config, real_subset, judge, torch.float64, rtol=1e-6)


def test_diverged_member_is_frozen_and_the_others_go_on(real_subset, judge):
    healthy = TINY.replace(family="gan", optim_d="sgd", optim_g="sgd", lr=1e-2, steps=15)
    exploding = healthy.replace(lr=1e30)
    grouped = train_group([exploding, healthy], real_subset, judge, keep_state=True)
    assert grouped[0].status == "diverged" and grouped[0].scores is None and grouped[0].sample_grid is None
    assert 0 <= grouped[0].diverged_at_step < 15 and grouped[0].steps == grouped[0].diverged_at_step + 1
    (alone,) = train_group([healthy], real_subset, judge, keep_state=True)
    assert_same_member(grouped[1], alone, rtol=FLOAT32_RTOL)
    assert all(math.isfinite(v) for v in grouped[1].curves["loss_d"])


def test_same_config_and_seed_reproduce_exactly(real_subset, judge):
    config = TINY.replace(steps=5, dropout_d=True)
    first, second = (train_group([config], real_subset, judge)[0] for _ in range(2))
    assert first.scores == second.scores and (first.sample_grid == second.sample_grid).all()
    (other_seed,) = train_group([config.replace(seed=1)], real_subset, judge)
    assert other_seed.scores["i_prime"] != first.scores["i_prime"]


def test_results_carry_scores_curves_and_a_sample_grid(real_subset, judge):
    (result,) = train_group([TINY.replace(steps=6)], real_subset, judge)
    assert result.scores["n_samples"] == 64 and set(result.curves) == {"loss_d", "loss_g", "energy_real", "energy_fake"}
    assert result.sample_grid.shape == (64, 32, 32) and result.sample_grid.dtype.name == "uint8"
    assert len(result.curves["loss_d"]) == 6 and result.seconds > 0


def test_mixed_groups_are_refused(real_subset, judge):
    with pytest.raises(ValueError, match="share group_key"):
        train_group([TINY, TINY.replace(size_g=64)], real_subset, judge)
    with pytest.raises(ValueError, match="same \\(config, seed\\) twice"):
        train_group([TINY, TINY], real_subset, judge)


def test_margin_decay_reaches_zero_and_then_the_loss_is_the_real_energy(real_subset, judge):
    fixed = TINY.replace(steps=6, margin=10.0)
    decaying = fixed.replace(margin_decay_steps=1)  # m_0 = 10, m_t = 0 from step 1 on
    grouped = train_group([fixed, decaying], real_subset, judge, keep_state=True, dtype=torch.float64)
    decayed = grouped[1].curves
    # With m = 0, L_D = mean D(x) + [0 - D(G(z))]^+ = mean D(x): the two curves coincide from step 1.
    assert decayed["loss_d"][1:] == pytest.approx(decayed["energy_real"][1:], rel=1e-6)
    assert decayed["loss_d"][0] != pytest.approx(decayed["energy_real"][0], rel=1e-3)
    fixed_curves = grouped[0].curves
    assert fixed_curves["loss_d"][1] != pytest.approx(fixed_curves["energy_real"][1], rel=1e-3)
    (alone,) = train_group([decaying], real_subset, judge, keep_state=True, dtype=torch.float64)
    assert_same_member(grouped[1], alone)


def test_a_member_trained_in_a_wave_equals_it_in_one_group(real_subset, judge):
    data = real_subset
    configs = [TINY.replace(seed=s, lr=lr) for s, lr in enumerate((1e-4, 2e-4, 5e-4))]
    budget = int(2.5 * member_bytes(TINY, torch.float64))
    waved = train_group(configs, data, judge, keep_state=True, memory_budget=budget, dtype=torch.float64)
    whole = train_group(configs, data, judge, keep_state=True, memory_budget=10**12, dtype=torch.float64)
    assert [r.config for r in waved] == configs
    assert [r.group_size for r in waved] == [2, 2, 1] and [r.group_size for r in whole] == [3] * 3
    for in_wave, in_group in zip(waved, whole, strict=True):
        assert_same_member(in_wave, in_group)
