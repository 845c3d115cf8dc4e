"""Each score against an independent straightforward computation, and sanity on real MNIST."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebgan_core.table1.scoring import (
    frechet_distance,
    inception_score,
    mode_coverage,
    modified_inception_score,
    score_generator,
    score_image_sets,
    score_images,
)


def random_probs(n: int, k: int = 10, seed: int = 0, concentration: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet([concentration] * k, size=n)


def loop_i_prime(probs: np.ndarray) -> float:
    """I' = (1/N) sum_x sum_y p(y) log(p(y) / p(y|x)), written as plainly as possible."""
    n, k = probs.shape
    marginal = [sum(probs[i][y] for i in range(n)) / n for y in range(k)]
    total = 0.0
    for i in range(n):
        total += sum(marginal[y] * math.log(marginal[y] / probs[i][y]) for y in range(k) if marginal[y] > 0)
    return total / n


def loop_inception_score(probs: np.ndarray) -> float:
    n, k = probs.shape
    marginal = [sum(probs[i][y] for i in range(n)) / n for y in range(k)]
    total = 0.0
    for i in range(n):
        total += sum(probs[i][y] * math.log(probs[i][y] / marginal[y]) for y in range(k) if probs[i][y] > 0)
    return math.exp(total / n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_i_prime_matches_the_definition(seed):
    probs = random_probs(200, seed=seed)
    assert modified_inception_score(torch.tensor(probs)) == pytest.approx(loop_i_prime(probs), rel=1e-10)


def test_i_prime_is_not_the_usual_kl_order_and_has_no_exp():
    probs = random_probs(300, seed=3)
    i_prime = modified_inception_score(torch.tensor(probs))
    assert i_prime != pytest.approx(math.log(loop_inception_score(probs)), rel=1e-3)
    assert i_prime != pytest.approx(math.exp(loop_i_prime(probs)), rel=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_inception_score_matches_the_definition(seed):
    probs = random_probs(200, seed=seed)
    assert inception_score(torch.tensor(probs)) == pytest.approx(loop_inception_score(probs), rel=1e-10)


def test_identical_predictions_score_zero_and_one():
    probs = torch.tensor(random_probs(1, seed=4)).expand(50, 10)
    assert modified_inception_score(probs) == pytest.approx(0.0, abs=1e-12)
    assert inception_score(probs) == pytest.approx(1.0, abs=1e-12)


def test_exact_zero_probabilities_stay_finite():
    probs = torch.eye(10, dtype=torch.float64).repeat(3, 1)  # confident, one-hot, all classes
    i_prime = modified_inception_score(probs)
    assert math.isfinite(i_prime)
    # Each sample: p(y) = 0.1 for all y; 9 classes at the floor, one at probability 1.
    floor_log = math.log(torch.finfo(torch.float64).tiny)
    assert i_prime == pytest.approx(math.log(0.1) - 0.9 * floor_log, rel=1e-12)
    assert inception_score(probs) == pytest.approx(10.0, rel=1e-12)


def test_mode_coverage_counts_argmax_classes():
    probs = np.full((6, 10), 0.01)
    for i, cls in enumerate([3, 3, 3, 7, 7, 0]):
        probs[i, cls] = 0.91
    result = mode_coverage(torch.tensor(probs))
    assert result["class_histogram"] == [1, 0, 0, 3, 0, 0, 0, 2, 0, 0]
    assert result["classes_present"] == 3
    shares = [1 / 6, 3 / 6, 2 / 6]
    assert result["kl_to_uniform"] == pytest.approx(sum(s * math.log(s * 10) for s in shares), rel=1e-12)


def numpy_frechet(mu1, s1, mu2, s2) -> float:
    """Independent route: tr sqrt(S1 S2) from the eigenvalues of the (non-symmetric) product S1 S2."""
    eig = np.linalg.eigvals(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def test_frechet_distance_matches_an_independent_computation():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) + 0.5
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T)
    ours = frechet_distance(*(torch.tensor(t) for t in (mu1, s1, mu2, s2)))
    assert ours == pytest.approx(numpy_frechet(mu1, s1, mu2, s2), rel=1e-8)
    assert frechet_distance(*(torch.tensor(t) for t in (mu1, s1, mu1, s1))) == pytest.approx(0.0, abs=1e-8)


def test_real_digits_score_high_noise_and_one_digit_near_zero(mnist_test, judge):
    images, labels = mnist_test
    real = score_images(images[:2000], judge)
    noise = score_images(torch.rand(2000, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1, judge)
    one_digit = score_images(images[labels == 3][:1].expand(2000, 1, 32, 32), judge)
    assert real["n_samples"] == noise["n_samples"] == one_digit["n_samples"] == 2000
    assert real["i_prime"] > 10 and real["classes_present"] == 10 and real["inception_score"] > 9
    assert noise["i_prime"] < 0.5
    assert abs(one_digit["i_prime"]) < 1e-9 and one_digit["classes_present"] == 1
    assert real["frechet_distance"] < 0.5 < noise["frechet_distance"]


def test_batched_sets_score_like_single_sets(mnist_test, judge):
    images, _ = mnist_test
    sets = torch.stack([images[:300], images[300:600]])
    batched = score_image_sets(sets.flatten(2), judge)  # the flat 1024 view is accepted too
    assert batched[1]["i_prime"] == pytest.approx(score_images(images[300:600], judge)["i_prime"], rel=1e-9)


def test_score_generator_states_its_sample_count(mnist_test, judge):
    images, _ = mnist_test
    drawn = []

    def generate(count: int) -> torch.Tensor:
        start = sum(drawn)
        drawn.append(count)
        return images[start : start + count]

    result = score_generator(generate, 2500, judge, batch_size=1000)
    assert drawn == [1000, 1000, 500] and result["n_samples"] == 2500
    assert result["i_prime"] == pytest.approx(score_images(images[:2500], judge)["i_prime"], rel=1e-9)
