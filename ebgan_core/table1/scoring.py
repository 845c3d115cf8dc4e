"""Scores of generated digits: the paper's I', the usual IS, mode coverage and a Fréchet distance.

All scores use the judge's class probabilities p(y|x) in float64. A probability below
``PROB_FLOOR`` (the smallest normal float64, ~2.2e-308) is raised to it before its log is
taken, so no score is ever inf/NaN: one sample's I' term is then at most p(y) * 708 nats.
The judge's float64 log-softmax reaches the floor only for logit gaps above ~708, so for its
outputs the floor never changes a score. Every result states its sample count ``n_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ebgan_core.data import IMAGE_SIDE  # the judge's input: MNIST padded to 32x32
from ebgan_core.determinism import one_mkl_thread
from ebgan_core.images import resized_square
from ebgan_core.table1.classifier import MnistConvNet, predict

PROB_FLOOR = torch.finfo(torch.float64).tiny
NUM_CLASSES = 10


def _as_probs(probs: torch.Tensor) -> torch.Tensor:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.ndim != 2 or probs.shape[0] < 1:
        raise ValueError(f"expected class probabilities of shape [N, classes] with N >= 1, got {tuple(probs.shape)}")
    return probs


def modified_inception_score(probs: torch.Tensor) -> float:
    """The paper's I' = E_x KL(p(y) || p(y|x)), p(y) the mean of p(y|x) over the N samples; no exp.

    probs: [N, classes]. Higher is better; 0 when every sample gets the same p(y|x).
    """
    probs = _as_probs(probs)
    marginal = probs.mean(dim=0)
    log_conditional = probs.clamp_min(PROB_FLOOR).log()
    # KL(p(y) || p(y|x)) = sum_y p(y) log p(y) - sum_y p(y) log p(y|x), with 0 log 0 = 0.
    neg_entropy = torch.xlogy(marginal, marginal).sum()
    cross = (log_conditional * marginal).sum(dim=1)
    return (neg_entropy - cross).mean().item()


def inception_score(probs: torch.Tensor) -> float:
    """The usual IS = exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016); between 1 and the class count."""
    probs = _as_probs(probs)
    marginal = probs.mean(dim=0)
    # Where p(y|x) > 0, p(y) > 0 too; terms with p(y|x) = 0 are 0.
    kl = (torch.xlogy(probs, probs) - torch.xlogy(probs, marginal.expand_as(probs))).sum(dim=1)
    return kl.mean().exp().item()


def mode_coverage(probs: torch.Tensor) -> dict[str, object]:
    """Class histogram of the judge's predictions, number of classes present, and KL(histogram || uniform)."""
    probs = _as_probs(probs)
    counts = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1])
    shares = counts.double() / counts.sum()
    kl_to_uniform = (torch.xlogy(shares, shares) + shares * math.log(probs.shape[1])).sum()
    return {
        "class_histogram": [int(c) for c in counts],
        "classes_present": int((counts > 0).sum()),
        "kl_to_uniform": kl_to_uniform.item(),
    }


def frechet_distance(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two Gaussians (float64).

    tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD matrix.
    """
    mean_a, cov_a, mean_b, cov_b = (torch.as_tensor(t, dtype=torch.float64) for t in (mean_a, cov_a, mean_b, cov_b))
    with one_mkl_thread():  # the same digits whatever the caller's thread count
        eigenvalues, eigenvectors = torch.linalg.eigh(cov_a)
        sqrt_a = (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T
        middle = sqrt_a @ cov_b @ sqrt_a
        trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return distance.clamp_min(0).item()


def at_judge_size(images: torch.Tensor) -> torch.Tensor:
    """Grey square images [B, N, side * side] of any side -> [B, N, 1, 32, 32], the judge's input: resized (bilinear,
    antialiased: a 64x64 image's 2x2 blocks averaged) where the side is not 32."""
    side = math.isqrt(images.shape[-1])
    if side * side != images.shape[-1]:
        raise ValueError(f"expected flattened square grey images, got {images.shape[-1]} pixels each")
    square = resized_square(images.reshape(-1, 1, side, side), IMAGE_SIDE)
    return square.reshape(*images.shape[:2], 1, IMAGE_SIDE, IMAGE_SIDE)


def score_image_sets(images: torch.Tensor, judge: MnistConvNet) -> list[dict[str, object]]:
    """Score B sets of N images [B, N, 1, 32, 32] (or [B, N, 1024]), each set in the judge's batches of its own."""
    if images.ndim == 3:
        images = images.reshape(*images.shape[:2], 1, 32, 32)
    if images.ndim != 5 or tuple(images.shape[2:]) != (1, 32, 32):
        raise ValueError(f"expected images [B, N, 1, 32, 32] or [B, N, 1024], got {tuple(images.shape)}")
    sets, count = images.shape[:2]
    if count < 2:
        raise ValueError(f"scoring needs at least 2 images per set, got {count}")
    results = []
    for member in range(sets):  # each set in batches of its own: the same batches as when it is scored alone
        log_probs, member_features = predict(judge, images[member])
        member_probs = log_probs.exp()
        cov = torch.cov(member_features.T)
        results.append(
            {
                "n_samples": int(count),
                "i_prime": modified_inception_score(member_probs),
                "inception_score": inception_score(member_probs),
                **mode_coverage(member_probs),
                "frechet_distance": frechet_distance(
                    member_features.mean(dim=0), cov, judge.reference_mean.cpu(), judge.reference_cov.cpu()
                ),
            }
        )
    return results


def score_images(images: torch.Tensor, judge: MnistConvNet) -> dict[str, object]:
    """All scores of one set of N images [N, 1, 32, 32] (or [N, 1024]) in [-1, 1]."""
    return score_image_sets(images.unsqueeze(0), judge)[0]


def score_generator(
    generate: Callable[[int], torch.Tensor], n_samples: int, judge: MnistConvNet, batch_size: int = 1000
) -> dict[str, object]:
    """Draw ``n_samples`` images from ``generate(count)`` in batches and score them."""
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 to score a generator, got {n_samples}")
    chunks = []
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            chunks.append(generate(min(batch_size, n_samples - start)).detach().cpu().reshape(-1, 1, 32, 32))
    return score_images(torch.cat(chunks), judge)
