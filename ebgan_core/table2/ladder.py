"""The bottom-layer-cost ladder network (Rasmus et al. 2015) and EBGAN-LN's generator, stacked over B members.

Encoder layer l (a fully connected 784-1000-500-250-250-250-10 net): z_l = BN(W_l h_{l-1}) + noise, with batch norm
that has no learned gain, then h_l = ReLU(z_l + beta_l); the top layer is softmax(gamma * (z_L + beta_L)) (Rasmus et
al.'s ``top_c``). The corrupted path adds N(0, noise_std^2) to the input and to every z_l; the clean path adds none.
Decoder, top down: u_L = BN(h~_L), u_l = BN(V_{l+1} z^_{l+1}), z^_l = g(z~_l, u_l) with the "vanilla" (gauss)
combinator g. Only the bottom layer has a cost (the bottom-layer-cost model): the per-pixel mean squared error
between z^_0 and the clean input, a "vanilla" l2 loss (Appendix D), not the norm of Table 1's EBGAN.

Batch statistics are those of the batch being encoded (labelled, unlabelled and generated batches each have their
own); at test time the clean encoder uses statistics measured once over training images (``population_stats``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ebgan_core.pointwise import sigmoid
from ebgan_core.stacked import StackedBatchNorm, StackedLinear

PIXELS = 28 * 28
CLASSES = 10
BN_EPS = 1e-10  # as Rasmus et al.'s code
COMBINATOR_PARAMS = 10
COMBINATOR_ONES = (1, 6)  # a2 and a7 start at 1, the other eight at 0 (Rasmus et al.)

Stats = list[tuple[torch.Tensor, torch.Tensor]]  # per encoder layer: (mean, var), each [B, 1, width]


def combinator(z_corrupted: torch.Tensor, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The vanilla (gauss) combinator: z^ = (z~ - mu(u)) * v(u) + mu(u).

    mu = a1 sigmoid(a2 u + a3) + a4 u + a5, v = a6 sigmoid(a7 u + a8) + a9 u + a10; ``a`` is [B, 10, width].
    """
    a = a.unsqueeze(2)  # [B, 10, 1, width]: broadcast over the samples
    mu = a[:, 0] * sigmoid(a[:, 1] * u + a[:, 2]) + a[:, 3] * u + a[:, 4]
    v = a[:, 5] * sigmoid(a[:, 6] * u + a[:, 7]) + a[:, 8] * u + a[:, 9]
    return (z_corrupted - mu) * v + mu


def normalize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch norm without parameters over the N samples of each member: (x - mean) / sqrt(var + eps), mean, var."""
    mean = x.mean(dim=1, keepdim=True)
    centered = x - mean
    var = centered.square().mean(dim=1, keepdim=True)
    return centered * torch.rsqrt(var + BN_EPS), mean, var


def reconstruction_error(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over pixels of the squared error: [B, N, 784] -> [B, N]."""
    return (reconstruction - x).square().mean(dim=-1)


def member_noise(shape: Sequence[int], noise_std: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """N(0, noise_std[b]^2) noise of ``shape`` [N, F] per member b, from its own generator: [B, N, F] (drawn in
    float32, then cast to ``noise_std``'s dtype)."""
    draws = torch.stack([torch.randn(*shape, generator=g, device=g.device) for g in generators])
    return draws.to(noise_std.dtype) * noise_std.view(-1, 1, 1)


class StackedLadder(nn.Module):
    """B ladder networks of one shape; ``forward`` is not used, the passes below are."""

    def __init__(self, members: int, widths: Sequence[int]) -> None:
        super().__init__()
        dims = (PIXELS, *widths, CLASSES)
        self.dims = dims
        self.encoder = nn.ModuleList(StackedLinear(members, dims[i], dims[i + 1], bias=False)
                                     for i in range(len(dims) - 1))
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, d)) for d in dims[1:])
        self.gamma_top = nn.Parameter(torch.ones(members, 1, CLASSES))
        # decoder[l] maps layer l+1's estimate down to layer l (V_{l+1})
        self.decoder = nn.ModuleList(StackedLinear(members, dims[i + 1], dims[i], bias=False)
                                     for i in range(len(dims) - 1))
        self.combinators = nn.ParameterList(nn.Parameter(self._combinator_init(members, d)) for d in dims)

    @staticmethod
    def _combinator_init(members: int, width: int) -> torch.Tensor:
        a = torch.zeros(members, COMBINATOR_PARAMS, width)
        a[:, list(COMBINATOR_ONES)] = 1.0
        return a

    @torch.no_grad()
    def init_weights_(self, generators: Sequence[torch.Generator]) -> None:
        """Every W and V ~ N(0, 1/fan_in) from each member's own generator (Rasmus et al.'s ``rand_init``)."""
        for layer in (*self.encoder, *self.decoder):
            layer.init_normal_(layer.weight.shape[1] ** -0.5, generators)

    def encode(
        self,
        x: torch.Tensor,
        noise_std: torch.Tensor | None = None,
        generators: Sequence[torch.Generator] = (),
        stats: Stats | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, Stats]:
        """The encoder on images x [B, N, 784] (or [N, 784], shared by all members).

        Returns the lateral z_l of every layer (z_0 the input; corrupted where ``noise_std`` is given), the top
        logits [B, N, 10], and the batch statistics used (``stats`` if given: the test-time pass).
        """
        members = self.gamma_top.shape[0]
        h = x.expand(members, *x.shape) if x.dim() == 2 else x
        corrupt = noise_std is not None
        if corrupt:
            h = h + member_noise(h.shape[1:], noise_std, generators)
        lateral, used = [h], []
        for index, linear in enumerate(self.encoder):
            pre = linear(h)
            if stats is None:
                z, mean, var = normalize(pre)
            else:
                mean, var = stats[index]
                z = (pre - mean) * torch.rsqrt(var + BN_EPS)
            used.append((mean, var))
            if corrupt:
                z = z + member_noise(z.shape[1:], noise_std, generators)
            lateral.append(z)
            if index < len(self.encoder) - 1:
                h = torch.relu(z + self.beta[index])
        logits = self.gamma_top * (lateral[-1] + self.beta[-1])
        return lateral, logits, used

    def decode(self, lateral: Sequence[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        """The decoder, top down, from the corrupted pass's lateral z~ and top logits; returns z^_0 [B, N, 784]."""
        u = normalize(torch.softmax(logits, dim=-1))[0]
        estimate = combinator(lateral[-1], u, self.combinators[-1])
        for level in range(len(lateral) - 2, -1, -1):
            u = normalize(self.decoder[level](estimate))[0]
            estimate = combinator(lateral[level], u, self.combinators[level])
        return estimate

    def energy(self, x: torch.Tensor, noise_std: torch.Tensor, generators: Sequence[torch.Generator],
               recon_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """EBGAN-LN's energy of each sample: recon_weight * the bottom-layer cost of the corrupted pass [B, N];
        and the corrupted pass's top logits."""
        lateral, logits, _ = self.encode(x, noise_std, generators)
        reconstruction = self.decode(lateral, logits)
        target = x.expand_as(reconstruction)
        return recon_weight.view(-1, 1) * reconstruction_error(target, reconstruction), logits

    @torch.no_grad()
    def population_stats(self, images: torch.Tensor) -> Stats:
        """Batch-norm statistics of the clean encoder over ``images`` [N, 784] as one batch, for test time."""
        return self.encode(images)[2]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, stats: Stats, chunk: int = 2000) -> torch.Tensor:
        """Class predictions [B, N] of the clean encoder with fixed batch-norm ``stats``."""
        parts = [self.encode(images[i : i + chunk], stats=stats)[1].argmax(-1) for i in range(0, len(images), chunk)]
        return torch.cat(parts, dim=1)


def classification_cost(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per member: logits [B, N, 10], labels [B, N] -> [B]."""
    members, count = labels.shape
    per_sample = F.cross_entropy(logits.reshape(members * count, CLASSES), labels.reshape(-1), reduction="none")
    return per_sample.view(members, count).mean(dim=1)


class NoiseFedGenerator(nn.Module):
    """EBGAN-LN's generator: every layer sees fresh noise concatenated with its input features (Section 4.2).

    Hidden layers: linear -> batch norm -> ReLU; output: linear -> sigmoid, 784 pixels in (0, 1).
    """

    def __init__(self, members: int, noise_dim: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        inputs = (0, *widths)
        self.hidden = nn.ModuleList(StackedLinear(members, inputs[i] + noise_dim, widths[i], bias=False)
                                    for i in range(len(widths)))
        self.norms = nn.ModuleList(StackedBatchNorm(members, w) for w in widths)
        self.output = StackedLinear(members, widths[-1] + noise_dim, PIXELS)

    def forward(self, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        """``noise``: one [B, N, noise_dim] tensor per layer (len(widths) + 1) -> images [B, N, 784]."""
        if len(noise) != len(self.hidden) + 1:
            raise ValueError(f"the generator needs {len(self.hidden) + 1} noise tensors, got {len(noise)}")
        h = noise[0]
        for linear, norm, z in zip(self.hidden, self.norms, noise[1:], strict=True):
            h = torch.cat([torch.relu(norm(linear(h))), z], dim=-1)
        return sigmoid(self.output(h))
