"""The ladder network and EBGAN-LN: each formula against a written-out computation, a textbook single-model
training run, stacked-group parity and real learning on real MNIST."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ebgan_core.checkpoint import load_group_state, save_group_state
from ebgan_core.group import Checkpointing
from ebgan_core.rng import derive_seed, real_batches
from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.ladder import (
    COMBINATOR_PARAMS,
    StackedLadder,
    classification_cost,
    combinator,
    reconstruction_error,
)
from ebgan_core.table2.pi_mnist import PiMnist, labelled_indices, load_pi_mnist
from ebgan_core.table2.train import STREAMS, LabelledOrder, lr_scale, train_ladder_group

SMALL = LadderConfig(family="ln", labels=20, steps=8, decay_start=4, width_divisor=16, batch_size=16, lr=0.002,
                     bn_samples=500)


@pytest.fixture(scope="module")
def pi_mnist() -> PiMnist:
    return load_pi_mnist()


@pytest.fixture(scope="module")
def small_data(pi_mnist) -> PiMnist:
    """4,096 training images (the labelled ones drawn among them) and 1,000 test images."""
    return PiMnist(pi_mnist.train_images[:4096], pi_mnist.train_labels[:4096], pi_mnist.test_images[:1000],
                   pi_mnist.test_labels[:1000])


# --- formulas -------------------------------------------------------------------------------------------------


def test_combinator_matches_rasmus_formula_elementwise():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, COMBINATOR_PARAMS, 3))
    z = rng.normal(size=(2, 4, 3))
    u = rng.normal(size=(2, 4, 3))
    got = combinator(torch.tensor(z), torch.tensor(u), torch.tensor(a)).numpy()
    sigmoid = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    for b, n, j in np.ndindex(*z.shape):
        p = a[b, :, j]
        mu = p[0] * sigmoid(p[1] * u[b, n, j] + p[2]) + p[3] * u[b, n, j] + p[4]
        v = p[5] * sigmoid(p[6] * u[b, n, j] + p[7]) + p[8] * u[b, n, j] + p[9]
        assert got[b, n, j] == pytest.approx((z[b, n, j] - mu) * v + mu, rel=1e-12)


def test_combinator_starts_at_zero_estimate():
    """Rasmus et al.'s init (a2 = a7 = 1, the rest 0) gives mu = v = 0: the decoder starts from z^ = 0."""
    ladder = StackedLadder(2, (8, 4, 4, 4, 4))
    z, u = torch.randn(2, 5, 784), torch.randn(2, 5, 784)
    assert torch.equal(combinator(z, u, ladder.combinators[0].detach()), torch.zeros(2, 5, 784))


def test_reconstruction_error_is_the_vanilla_per_pixel_mean_not_the_norm():
    x, r = torch.rand(2, 3, 784), torch.rand(2, 3, 784)
    expected = [[sum((float(r[b, n, i]) - float(x[b, n, i])) ** 2 for i in range(784)) / 784 for n in range(3)]
                for b in range(2)]
    torch.testing.assert_close(reconstruction_error(x, r), torch.tensor(expected), rtol=1e-5, atol=0)
    assert not torch.allclose(reconstruction_error(x, r), torch.linalg.vector_norm(r - x, dim=-1))


def test_recon_weight_is_the_paper_lambda_times_784():
    """lambda = 1000/784 on the summed squared error is recon_weight 1000 on the per-pixel mean."""
    x, r = torch.rand(1, 4, 784), torch.rand(1, 4, 784)
    summed = (r - x).square().sum(-1) * (1000 / 784)
    torch.testing.assert_close(1000 * reconstruction_error(x, r), summed)


def test_classification_cost_is_each_members_cross_entropy():
    logits, labels = torch.randn(3, 6, 10), torch.randint(0, 10, (3, 6))
    expected = torch.stack([F.cross_entropy(logits[b], labels[b]) for b in range(3)])
    torch.testing.assert_close(classification_cost(logits, labels), expected)


def test_lr_decays_linearly_to_zero_from_decay_start():
    assert [lr_scale(s, 120_000, 80_000) for s in (0, 79_999, 80_000, 100_000, 119_999)] == [
        1.0, 1.0, 1.0, 0.5, 1 / 40_000]


def test_labelled_subset_is_balanced_seeded_and_differs_by_seed(pi_mnist):
    picks = labelled_indices(pi_mnist.train_labels, 100, seed=3)
    assert len(set(picks.tolist())) == 100
    assert torch.bincount(pi_mnist.train_labels[picks], minlength=10).tolist() == [10] * 10
    assert torch.equal(picks, labelled_indices(pi_mnist.train_labels, 100, seed=3))
    assert not torch.equal(picks, labelled_indices(pi_mnist.train_labels, 100, seed=4))
    with pytest.raises(ValueError, match="multiple of 10"):
        labelled_indices(pi_mnist.train_labels, 105, seed=0)


def test_labelled_batches_cycle_permutations_even_when_the_set_is_smaller_than_a_batch():
    order = LabelledOrder(7, 5, torch.Generator().manual_seed(0))
    drawn = torch.cat([order.next() for _ in range(7)])  # 35 = 5 whole permutations of 7
    assert sorted(torch.bincount(drawn).tolist()) == [5] * 7


def test_pi_mnist_is_unpadded_flat_and_in_unit_range(pi_mnist):
    assert pi_mnist.train_images.shape == (60_000, 784) and pi_mnist.test_images.shape == (10_000, 784)
    assert pi_mnist.train_images.min() == 0 and pi_mnist.train_images.max() == 1


def test_predictions_with_a_batchs_own_statistics_equal_the_batch_pass():
    ladder = StackedLadder(2, (16, 8, 8, 8, 8))
    ladder.init_weights_([torch.Generator().manual_seed(i) for i in range(2)])
    images = torch.rand(300, 784)
    logits, stats = ladder.encode(images)[1:]
    assert torch.equal(ladder.predict(images, stats, chunk=300), logits.argmax(-1))


@pytest.mark.parametrize("change, message", [
    ({"labels": 105}, "multiple of 10"), ({"lr": 0.0}, "lr must be"),
    ({"family": "vae"}, "unknown Table 2 family 'vae'"),
    ({"family": "mlp"}, "family mlp"), ({"decay_start": 200_000}, "decay_start"),
    ({"family": "ebgan-ln", "margin_decay_steps": 200_000}, "margin_decay_steps"), ({"noise_std": -1}, "noise_std"),
])
def test_bad_configs_are_refused_with_the_reason(change, message):
    with pytest.raises(ValueError, match=message):
        LadderConfig(**change)


def test_hash_ignores_settings_a_family_does_not_use_and_the_seed():
    assert LadderConfig().config_hash() == LadderConfig(margin=3.0, lr_g=1.0, seed=9).config_hash()
    ebgan = LadderConfig(family="ebgan-ln", steps=180_000, decay_start=120_000)
    assert ebgan.config_hash() != ebgan.replace(margin=3.0).config_hash()


# --- a textbook single ladder: nn.Linear, 2-D tensors, torch.optim.Adam, the costs written out -------------------


class TextbookLadder:
    """One ladder with the same initial weights as a B=1 stacked one, written the plain way."""

    def __init__(self, stacked: StackedLadder) -> None:
        def linear(layer):
            plain = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[2], bias=False, dtype=torch.float64)
            with torch.no_grad():
                plain.weight.copy_(layer.weight[0].T)
            return plain

        self.encoder = [linear(layer) for layer in stacked.encoder]
        self.decoder = [linear(layer) for layer in stacked.decoder]
        def leaf(tensor):
            return tensor.detach().double().clone().requires_grad_()

        self.beta = [leaf(p[0, 0]) for p in stacked.beta]
        self.gamma = leaf(stacked.gamma_top[0, 0])
        self.a = [leaf(p[0]) for p in stacked.combinators]

    def parameters(self) -> list[torch.Tensor]:
        weights = [p for layer in (*self.encoder, *self.decoder) for p in layer.parameters()]
        return [*weights, *self.beta, self.gamma, *self.a]

    @staticmethod
    def bn(x):
        mean = x.mean(0)
        return (x - mean) / torch.sqrt(((x - mean) ** 2).mean(0) + 1e-10)

    @staticmethod
    def g(z, u, a):
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z - mu) * v + mu

    def corrupted_pass(self, x, std, noise):
        h = x + std * torch.randn(x.shape, generator=noise).double()  # drawn in float32, as the stacked code does
        zs = [h]
        for index, layer in enumerate(self.encoder):
            z = self.bn(layer(h)) + std * torch.randn(h.shape[0], layer.out_features, generator=noise).double()
            zs.append(z)
            if index < len(self.encoder) - 1:
                h = torch.relu(z + self.beta[index])
        return zs, self.gamma * (zs[-1] + self.beta[-1])

    def energy(self, x, std, noise, weight):
        zs, logits = self.corrupted_pass(x, std, noise)
        estimate = self.g(zs[-1], self.bn(torch.softmax(logits, dim=1)), self.a[-1])
        for level in reversed(range(len(zs) - 1)):
            estimate = self.g(zs[level], self.bn(self.decoder[level](estimate)), self.a[level])
        return weight * ((estimate - x) ** 2).sum(1) / 784


def textbook_run(config: LadderConfig, data: PiMnist) -> TextbookLadder:
    """The LN member trained in float64 from the same initial weights, labelled and unlabelled batches and noise."""
    data = data.to("cpu", torch.float64)
    streams = {s: torch.Generator().manual_seed(derive_seed(config.seed, config.config_hash(), s)) for s in STREAMS}
    stacked = StackedLadder(1, config.encoder_widths())
    stacked.init_weights_([streams["init"]])
    ladder = TextbookLadder(stacked)
    optimizer = torch.optim.Adam(ladder.parameters(), lr=config.lr, betas=(config.adam_beta1, config.adam_beta2))
    picks = labelled_indices(data.train_labels, config.labels, config.seed)
    order = LabelledOrder(config.labels, config.batch_size, streams["labelled"])
    unlabelled = real_batches(data.train_images, config.batch_size, config.data_seed)
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_scale(step, config.steps, config.decay_start)
        batch = picks[order.next()]
        logits = ladder.corrupted_pass(data.train_images[batch], config.noise_std, streams["corruption"])[1]
        loss = F.cross_entropy(logits, data.train_labels[batch])
        loss = loss + ladder.energy(next(unlabelled), config.noise_std, streams["corruption"],
                                    config.recon_weight).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return ladder


def assert_matches_textbook(state: dict[str, torch.Tensor], theirs: TextbookLadder, rtol: float) -> None:
    """Every tensor, relative to its largest magnitude."""
    pairs = [*((f"encoder.{i}.weight", layer.weight.T) for i, layer in enumerate(theirs.encoder)),
             *((f"decoder.{i}.weight", layer.weight.T) for i, layer in enumerate(theirs.decoder)),
             *((f"combinators.{i}", a) for i, a in enumerate(theirs.a)),
             *((f"beta.{i}", b) for i, b in enumerate(theirs.beta)), ("gamma_top", theirs.gamma)]
    for name, tensor in pairs:
        expected = tensor.detach()
        got = state[name][0].reshape(expected.shape)
        scale = expected.abs().max().item()
        torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol * scale, msg=name)


def test_ladder_loss_and_every_gradient_match_a_textbook_ladder_at_a_random_point(small_data):
    """Away from the initialisation (random combinators, biases and gain), every decoder level is active."""
    torch.manual_seed(0)
    stacked = StackedLadder(1, (40, 20, 12, 12, 12)).double()
    stacked.init_weights_([torch.Generator().manual_seed(1)])
    with torch.no_grad():
        for a in stacked.combinators:
            a.normal_(0, 0.7)
        for b in stacked.beta:
            b.normal_(0, 0.3)
        stacked.gamma_top.normal_(1, 0.3)
    theirs = TextbookLadder(stacked)
    data = small_data.to("cpu", torch.float64)
    images, labels, unlabelled = data.train_images[:16], data.train_labels[:16], data.train_images[100:116]
    std, weight = torch.tensor([0.3], dtype=torch.float64), torch.tensor([1000.0], dtype=torch.float64)
    ours_noise, their_noise = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    logits = stacked.encode(images[None], std, [ours_noise])[1]
    loss = classification_cost(logits, labels[None]) + stacked.energy(unlabelled, std, [ours_noise], weight)[0].mean()
    loss.sum().backward()
    their_logits = theirs.corrupted_pass(images, 0.3, their_noise)[1]
    their_loss = F.cross_entropy(their_logits, labels) + theirs.energy(unlabelled, 0.3, their_noise, 1000.0).mean()
    their_loss.backward()
    assert loss.item() == pytest.approx(their_loss.item(), rel=1e-12)
    grads = {name: p.grad for name, p in stacked.named_parameters()}
    their_grads = TextbookLadder(stacked)  # a holder of the textbook gradients, in the textbook's layout
    for mine, source in ((their_grads.encoder, theirs.encoder), (their_grads.decoder, theirs.decoder)):
        for holder, layer in zip(mine, source, strict=True):
            holder.weight.data = layer.weight.grad
    for holders, sources in ((their_grads.a, theirs.a), (their_grads.beta, theirs.beta)):
        for holder, source in zip(holders, sources, strict=True):
            holder.data = source.grad
    their_grads.gamma.data = theirs.gamma.grad
    assert all(g.abs().max() > 0 for g in grads.values())
    assert_matches_textbook(grads, their_grads, rtol=1e-10)


# Float64, 3 steps: at Rasmus et al.'s initialisation every decoder estimate above the bottom is 0, so the learning
# signal climbs the decoder one level per step through batch norms of all-zero inputs, which divide by sqrt(1e-10)
# and amplify rounding 1e5-fold; two correct codes part after a few steps even in float64. The loop (batches,
# noise order, schedule, Adam) is checked here, every formula at a well-conditioned point above.
@pytest.mark.slow
def test_ln_training_matches_a_textbook_single_ladder(small_data):
    config = SMALL.replace(steps=3, decay_start=1)
    (ours,) = train_ladder_group([config], small_data, keep_state=True, dtype=torch.float64)
    theirs = textbook_run(config, small_data)
    assert_matches_textbook(ours.state["ladder"], theirs, rtol=1e-7)
    # training moved the weights (the comparison is not of two untouched initialisations)
    initial = StackedLadder(1, config.encoder_widths())
    assert not torch.allclose(ours.state["ladder"]["combinators.0"].float(), initial.combinators[0].detach())


# --- stacked groups ----------------------------------------------------------------------------------------------
# In float64, bit for bit: a member alone and in a group take the same arithmetic (as Table 1's, tests/test_train.py).


def assert_same_state(grouped: dict[str, torch.Tensor], alone: dict[str, torch.Tensor]) -> None:
    for name, tensor in alone.items():
        assert torch.equal(grouped[name], tensor), f"{name} differs"


@pytest.mark.slow
def test_members_in_a_mixed_group_match_them_alone(small_data):
    base = SMALL.replace(steps=6, decay_start=3)
    configs = [base, base.replace(recon_weight=500.0, lr=0.001, labels=30, seed=1),
               base.replace(family="mlp", recon_weight=0.0, noise_std=0.0)]
    grouped = train_ladder_group(configs, small_data, keep_state=True, dtype=torch.float64)
    for index, config in enumerate(configs):
        (alone,) = train_ladder_group([config], small_data, keep_state=True, dtype=torch.float64)
        assert_same_state(grouped[index].state["ladder"], alone.state["ladder"])
        assert grouped[index].scores == alone.scores


@pytest.mark.slow
def test_ebgan_ln_member_in_a_group_matches_it_alone_and_its_generator_stops(small_data):
    base = SMALL.replace(family="ebgan-ln", steps=5, decay_start=3, margin_decay_steps=3, margin=16.0)
    configs = [base, base.replace(margin=4.0, lr_g=0.001, seed=2)]
    grouped = train_ladder_group(configs, small_data, keep_state=True, dtype=torch.float64)
    for index, config in enumerate(configs):
        (alone,) = train_ladder_group([config], small_data, keep_state=True, dtype=torch.float64)
        for part in ("ladder", "generator"):
            assert_same_state(grouped[index].state[part], alone.state[part])
        assert grouped[index].scores == alone.scores and (grouped[index].sample_grid == alone.sample_grid).all()
    assert grouped[1].sample_grid.shape == (64, 28, 28) and grouped[1].sample_grid.dtype == np.uint8
    fake = grouped[0].curves["energy_fake"]
    assert all(math.isfinite(v) for v in fake[:3]) and all(math.isnan(v) for v in fake[3:])


def test_evaluating_along_the_way_leaves_the_result_unchanged(small_data):
    config = SMALL.replace(steps=6, decay_start=6)
    (plain,) = train_ladder_group([config], small_data, keep_state=True)
    (evaluated,) = train_ladder_group([config], small_data, keep_state=True, score_steps=[2, 4])
    assert sorted(evaluated.interim_scores) == [2, 4]
    assert plain.scores == evaluated.scores
    for name, tensor in plain.state["ladder"].items():
        assert torch.equal(evaluated.state["ladder"][name], tensor), name


# --- real learning --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ladder_learns_from_100_labels_and_the_unlabelled_images_help(pi_mnist):
    """200 steps at 1/8 widths: the ladder is far from chance and beats the same net trained on the labels alone (on
    seeds 0-3, 20-24% test error against 52-60%)."""
    base = LadderConfig(family="ln", labels=100, steps=200, decay_start=130, width_divisor=8, lr=0.002)
    ln, mlp = train_ladder_group([base, base.replace(family="mlp", recon_weight=0.0, noise_std=0.0)], pi_mnist)
    ln_error, mlp_error = ln.scores["test_error"], mlp.scores["test_error"]
    assert ln_error < 40 and ln_error < mlp_error - 3, (ln_error, mlp_error)


# --- mid-training checkpoints ---------------------------------------------------------------------------------


class WorkerKilledError(Exception):
    """Stands in for a killed worker: raised by the save hook right after a state was written."""


@pytest.mark.parametrize("family, stop_at", [("ebgan-ln", 2), ("ebgan-ln", 5), ("ln", 4)],
                         ids=["ebgan-ln-generator-training", "ebgan-ln-generator-stopped", "ln-and-mlp"])
def test_a_resumed_ladder_group_ends_exactly_as_one_never_stopped(small_data, tmp_path, family, stop_at):
    base = SMALL.replace(family=family, steps=8, decay_start=5, margin_decay_steps=4)
    configs = [base, base.replace(seed=1, labels=30)]
    if family == "ln":
        configs.append(base.replace(family="mlp", recon_weight=0.0, noise_std=0.0))
    uninterrupted = train_ladder_group(configs, small_data, keep_state=True, score_steps=[3, 6])
    path = tmp_path / "group.pt"

    def save(state: dict) -> None:
        save_group_state(path, state)
        if state["run"]["step"] == stop_at:
            raise WorkerKilledError

    with pytest.raises(WorkerKilledError):
        train_ladder_group(configs, small_data, score_steps=[3, 6], checkpointing=Checkpointing(0.0, save))
    resumed = train_ladder_group(configs, small_data, keep_state=True, score_steps=[3, 6],
                                 checkpointing=Checkpointing(1e9, lambda state: None, load_group_state(path)))
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert (a.resumed_from_step, b.resumed_from_step) == (stop_at, None)
        assert (a.status, a.steps, a.scores, a.interim_scores) == (b.status, b.steps, b.scores, b.interim_scores)
        for name, values in b.curves.items():
            assert np.array_equal(a.curves[name], values, equal_nan=True), name
        assert (a.sample_grid is None and b.sample_grid is None) or np.array_equal(a.sample_grid, b.sample_grid)
        for part, tensors in b.state.items():
            for name, tensor in tensors.items():
                assert torch.equal(a.state[part][name], tensor), f"{part}.{name}"


def test_a_saved_state_of_other_members_is_refused(small_data, tmp_path):
    path = tmp_path / "group.pt"

    def save(state: dict) -> None:
        save_group_state(path, state)
        raise WorkerKilledError

    with pytest.raises(WorkerKilledError):
        train_ladder_group([SMALL], small_data, checkpointing=Checkpointing(0.0, save))
    with pytest.raises(ValueError, match="other members"):
        train_ladder_group([SMALL.replace(seed=7)], small_data,
                           checkpointing=Checkpointing(1e9, save, load_group_state(path)))
