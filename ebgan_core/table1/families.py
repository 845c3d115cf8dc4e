"""Table 1's families: each kind of GAN the MNIST study trains is one registered ``Family`` (``FAMILIES``).

An entry carries everything that differs between families: its label and colour, its discriminator (an architecture
of ``ebgan_core.table1.models.DISCRIMINATORS``) and its losses as functions of that discriminator's ``Outputs``, the
name of the curve those outputs give, which of the config fields only some families use apply to it (they enter the
hash and are validated; the others must keep their defaults), its grids at Table 1's widths and the rows each
profile's subset takes of them, and its adaptive-search space. Config validation, the models, the training step,
the grids, the search spaces, the store's labels, the statistics, the figures and the report all read it; an unknown
family is a one-line error wherever its name enters. The paper's two are ``EBGAN`` and ``GAN``; adding one is
docs/extending.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ebgan_core.hashed_config import fail
from ebgan_core.losses import (
    began_k_update,
    decayed_margin,
    discriminator_bce,
    generator_minimax,
    generator_nonsaturating,
    gradient_penalty,
    hinge_discriminator,
    least_squares_discriminator,
    least_squares_generator,
    margin_loss,
    pulling_away_term,
    wasserstein_discriminator,
    wasserstein_generator,
)
from ebgan_core.pointwise import sigmoid
from ebgan_core.registry import Registry
from ebgan_core.rng import member_draws

if TYPE_CHECKING:
    from torch import nn

    from ebgan_core.table1.config import TrialConfig

# Table 1's axes, at the paper's widths.
N_LAYERS = (2, 3, 4, 5)
SIZES_G = (400, 800, 1600, 3200)
SIZES_D = (128, 256, 512, 1024)
DROPOUT = (True, False)
OPTIMIZERS = ("adam", "sgd")
GAN_LRS = (0.01, 0.001, 0.0001)
EBGAN_LR = 0.001
MARGINS_FIG9 = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 32.0)
PT_WEIGHT = 0.1
EBGAN_OPTIMISERS = (("adam", "adam", EBGAN_LR),)  # (optimD, optimG, lr): Table 1 trains EBGANs one way
GAN_OPTIMISERS = tuple(itertools.product(OPTIMIZERS, OPTIMIZERS, GAN_LRS))  # and GANs 12 ways

Row = dict[str, Any]  # config fields of one grid point
Parameters = dict[str, torch.Tensor | None]  # a family's per-member settings as [B] or [B, 1] tensors
Range = tuple[float, float, bool]  # (low, high, log-uniform?) of a sampled setting


@dataclass(frozen=True)
class Outputs:
    """What a discriminator says of N samples of each of B members."""

    value: torch.Tensor  # [B, N]: the energy (an auto-encoder's) or the unbounded output (a binary one's)
    code: torch.Tensor | None = None  # [B, N, s]: an auto-encoder's code, the pulling-away term's input


@dataclass(frozen=True)
class Grid:
    """One named grid of a family: its rows at Table 1's widths; ``subsetted``: the profiles' subsets (demo, mini,
    smoke) apply to it (Fig. 9's seven margins always run whole)."""

    rows: Callable[[], list[Row]]
    subsetted: bool = True


@dataclass(frozen=True)
class Family:
    """One family of Table 1's study (see the module's docstring)."""

    name: str  # the config's ``family``
    label: str  # its runs' label in tables and figures
    color: str  # matplotlib colour of that label
    discriminator: str  # an architecture of ``ebgan_core.table1.models.DISCRIMINATORS``
    discriminator_loss: Callable[[Outputs, Outputs, Parameters, int | torch.Tensor], torch.Tensor]  # (real, fake,
    # parameters, step) -> [B]
    generator_loss: Callable[[Outputs, Parameters], torch.Tensor]  # (fake, parameters) -> [B]
    statistic: str  # what the discriminator's value is, in curve names: ``<statistic>_real``, ``<statistic>_fake``
    grids: Mapping[str, Grid]  # its grids by name (names are unique across families)
    subsets: Mapping[str, Callable[[Row], bool]]  # profile subset (demo, mini, smoke) -> the grid rows it takes
    in_the_paper: bool = False  # the paper's: its grids make ``--grid all``; other families say so in the figures
    fields: tuple[str, ...] = ()  # of ``TrialConfig.OPTIONAL_FIELDS``, those that apply to it
    check: Callable[[TrialConfig], None] | None = None  # further validation: ``ebgan_core.hashed_config.fail``
    parameters: Callable[[Sequence[TrialConfig], Callable[[list[float]], torch.Tensor]], Parameters] | None = None
    # (configs, values -> [B] tensor) -> the losses' parameters; default: each of ``fields`` as a [B] tensor
    label_of: Callable[[Mapping[str, Any]], str] | None = None  # a run's label, if not always ``label``
    label_colors: Mapping[str, str] = field(default_factory=dict)  # colours of those other labels
    name_parts: Callable[[Mapping[str, Any]], list[str]] | None = None  # its fields in a run's one-line name
    search: Mapping[str, tuple] = field(default_factory=dict)  # adaptive search's choices beyond shapes and dropout
    search_ranges: Mapping[str, Range] = field(default_factory=dict)  # --continuous: (low, high, log) ranges,
    # replacing the choices of the same name
    penalty: Callable[[Callable[[torch.Tensor], Outputs], torch.Tensor, torch.Tensor, Parameters,
                       Sequence[torch.Generator]], torch.Tensor] | None = None  # (discriminator, real, fake,
    # parameters, each member's noise generator) -> [B], added to L_D (a gradient penalty)
    after_discriminator_update: Callable[[nn.Module, Outputs, Outputs, Parameters, torch.Tensor], None] | None = None
    # (discriminator, its outputs on the real and the fake batch of the update, parameters, active members [B]):
    # what follows each discriminator update (WGAN's clipping, BEGAN's control of k)
    state: tuple[str, ...] = ()  # parameters that change as members train (saved with a group's state)
    losses: Mapping[str, Mapping[str, Range]] = field(default_factory=dict)  # its losses in Lucic et al.'s study
    # (sweeps/table1/lucic.py), each with the ranges of the settings of its own that the study samples
    loss_of: Callable[[Mapping[str, Any]], str] | None = None  # which of ``losses`` a run is, if not always ``label``

    def curve_names(self) -> tuple[str, str, str, str]:
        return "loss_d", "loss_g", f"{self.statistic}_real", f"{self.statistic}_fake"

    def run_label(self, row: Mapping[str, Any]) -> str:
        """The label of a run of this family (its config fields, or a stored trial's columns)."""
        return self.label if self.label_of is None else self.label_of(row)

    def loss_label(self, row: Mapping[str, Any]) -> str:
        """The loss a run of this family trains, as Lucic et al.'s study names it (one of ``losses``)."""
        return self.label if self.loss_of is None else self.loss_of(row)

    def colors(self) -> dict[str, str]:
        """Each label this family's runs can carry, with its colour."""
        return {self.label: self.color, **self.label_colors}

    def member_parameters(self, configs: Sequence[TrialConfig], values: Callable[[list[float]], torch.Tensor]
                          ) -> Parameters:
        """The losses' per-member parameters of ``configs`` (``values``: numbers -> a [B] tensor on the device)."""
        if self.parameters is not None:
            return self.parameters(configs, values)
        return {name: values([getattr(c, name) for c in configs]) for name in self.fields}


class FamilyRegistry(Registry[Family]):
    """Table 1's families; registering checks an entry's discriminator and its grids' names."""

    def check(self, entry: Family) -> None:
        from ebgan_core.table1.models import DISCRIMINATORS  # here: the models import this module's Outputs

        if entry.discriminator not in DISCRIMINATORS:
            raise ValueError(f"family {entry.name!r}: unknown discriminator {entry.discriminator!r}; use one of "
                             f"{', '.join(DISCRIMINATORS)}")
        taken = {name: family.name for family in self._entries.values() if family.name != entry.name
                 for name in family.grids}
        clash = sorted(set(entry.grids) & (set(taken) | set(STUDY_GRIDS)))
        if clash:
            raise ValueError(f"family {entry.name!r}: grid name {clash[0]!r} is taken; fix: name it otherwise")


FAMILIES = FamilyRegistry("Table 1 family")
STUDY_GRIDS = ("all", "lucic", "images", "images-presets")  # grids the sweeps define across families


def table1_rows(family: str, optimisers: Sequence[tuple[str, str, float]], **fixed: Any) -> list[Row]:
    """Every Table 1 combination of layer counts, widths and dropout, for each (optimD, optimG, lr) of
    ``optimisers``, as config fields of ``family`` (with ``fixed`` besides)."""
    return [{"family": family, "n_layer_g": n_g, "n_layer_d": n_d, "size_g": size_g, "size_d": size_d,
             "dropout_d": dropout, "optim_d": optim_d, "optim_g": optim_g, "lr": lr, **fixed}
            for n_g, n_d, size_g, size_d, dropout, (optim_d, optim_g, lr)
            in itertools.product(N_LAYERS, N_LAYERS, SIZES_G, SIZES_D, DROPOUT, optimisers)]


def shape(row: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(nLayerG, nLayerD, sizeG, sizeD) of a grid row."""
    return row["n_layer_g"], row["n_layer_d"], row["size_g"], row["size_d"]


_CELLS = list(itertools.product(range(4), range(4)))
SMALLEST = (N_LAYERS[0], N_LAYERS[0], SIZES_G[0], SIZES_D[0])
# EBGAN's demo shapes: 32, every cell (i, j) of the 4x4 layer-count table twice, with sizeG indices (i+j)%4 and
# (i+j+2)%4 and sizeD indices (i+2j)%4 and (i+2j+1)%4, so each width appears equally often in every row and column.
EBGAN_DEMO_SHAPES = tuple((N_LAYERS[i], N_LAYERS[j], SIZES_G[(i + j + 2 * k) % 4], SIZES_D[(i + 2 * j + k) % 4])
                          for i, j in _CELLS for k in (0, 1))
# EBGAN's mini shapes (``make sweep``): the 4 diagonal cells (i, i) with the demo's first width choice (sizeG index
# 2i%4, sizeD index 3i%4): every layer count and every sizeD once, sizeG 400 and 1600 twice each.
EBGAN_MINI_SHAPES = tuple((N_LAYERS[i], N_LAYERS[i], SIZES_G[(2 * i) % 4], SIZES_D[(3 * i) % 4]) for i in range(4))
# The GAN's demo shapes: the 8 cells with i+j even, sizeG index (i + 2*(j//2))%4 and sizeD index (i+2j)%4, so every
# layer count and every width appears twice; with all 24 optimiser/lr/dropout settings of each shape, 192 configs.
GAN_DEMO_SHAPES = tuple((N_LAYERS[i], N_LAYERS[j], SIZES_G[(i + 2 * (j // 2)) % 4], SIZES_D[(i + 2 * j) % 4])
                        for i, j in _CELLS if (i + j) % 2 == 0)
# The GAN's mini shape: the demo's cell (4, 4), with all 24 settings, so every Fig. 3 sub-grid is present.
GAN_MINI_SHAPES = tuple(s for s in GAN_DEMO_SHAPES if s[:2] == (4, 4))

EBGAN_SUBSETS: dict[str, Callable[[Row], bool]] = {
    "demo": lambda row: shape(row) in EBGAN_DEMO_SHAPES,
    "mini": lambda row: shape(row) in EBGAN_MINI_SHAPES,
    "smoke": lambda row: shape(row) == SMALLEST,  # both dropouts
}
GAN_SUBSETS: dict[str, Callable[[Row], bool]] = {  # for any family with the GAN's 12 optimiser settings
    "demo": lambda row: shape(row) in GAN_DEMO_SHAPES,
    "mini": lambda row: shape(row) in GAN_MINI_SHAPES,
    "smoke": lambda row: shape(row) == SMALLEST and row["lr"] == 0.01 and not row["dropout_d"],  # 4 optimisers
}


# --- EBGAN (Section 2): an auto-encoder's energy, the margin loss and the pulling-away term ---------------------

def _ebgan_parameters(configs: Sequence[TrialConfig], values: Callable[[list[float]], torch.Tensor]) -> Parameters:
    """Margins [B, 1]; their decay steps [B, 1] (None when no member's margin decays); pulling-away weights [B] (None
    when no member uses the term, which is then not computed)."""
    decaying = any(c.margin_decay_steps for c in configs)
    pt_weights = [c.pt_weight for c in configs]
    return {"margin": values([c.margin for c in configs]).unsqueeze(-1),
            "margin_decay_steps": values([c.margin_decay_steps for c in configs]).unsqueeze(-1) if decaying else None,
            "pt_weight": values(pt_weights) if any(pt_weights) else None}


def _ebgan_discriminator_loss(real: Outputs, fake: Outputs, parameters: Parameters,
                              step: int | torch.Tensor) -> torch.Tensor:
    """L_D = D(x) + [m - D(G(z))]^+ per sample, then the mean (m decays as Appendix E where a member asks)."""
    margin, decay = parameters["margin"], parameters["margin_decay_steps"]
    return margin_loss(real.value, fake.value, margin if decay is None else decayed_margin(margin, decay, step))


def _ebgan_generator_loss(fake: Outputs, parameters: Parameters) -> torch.Tensor:
    """L_G = D(G(z)), plus lambda_PT f_PT(Enc(G(z))) for EBGAN-PT members."""
    loss = fake.value.mean(-1)
    weights = parameters["pt_weight"]
    return loss if weights is None else loss + weights * pulling_away_term(fake.code)


def _ebgan_check(config: TrialConfig) -> None:
    if not (math.isfinite(config.margin) and config.margin > 0):
        fail(f"margin must be a positive finite number, got {config.margin}")


def _ebgan_label(row: Mapping[str, Any]) -> str:
    """EBGAN-PT, EBGAN, or (Fig. 9's margins, fully connected) EBGAN m=<margin>."""
    if row["pt_weight"] > 0:
        return "EBGAN-PT"
    return "EBGAN" if row["margin"] == 10 or _is_conv(row) else f"EBGAN m={row['margin']:g}"


def _is_conv(row: Mapping[str, Any]) -> bool:
    """Whether a run (config fields, or a stored trial's columns) has the convolutional networks."""
    return row.get("architecture") == "conv"


def _ebgan_name_parts(row: Mapping[str, Any]) -> list[str]:
    decay = row.get("margin_decay_steps") or 0
    parts = [f"m={row['margin']:g}" + (f"->0/{decay}" if decay else "")]
    return parts + ([f"pt={row['pt_weight']:g}"] if row["pt_weight"] else [])


EBGAN = FAMILIES.register(Family(
    name="ebgan", label="EBGAN", color="tab:blue", discriminator="auto-encoder",
    discriminator_loss=_ebgan_discriminator_loss, generator_loss=_ebgan_generator_loss, statistic="energy",
    grids={"ebgan": Grid(lambda: table1_rows("ebgan", EBGAN_OPTIMISERS, pt_weight=0.0)),
           "ebgan-pt": Grid(lambda: table1_rows("ebgan", EBGAN_OPTIMISERS, pt_weight=PT_WEIGHT)),
           "margin": Grid(lambda: [{"family": "ebgan", "n_layer_g": 5, "n_layer_d": 2, "size_g": 1600, "size_d": 1024,
                                    "dropout_d": False, "optim_d": "adam", "optim_g": "adam", "lr": EBGAN_LR,
                                    "margin": m} for m in MARGINS_FIG9], subsetted=False)},
    subsets=EBGAN_SUBSETS, in_the_paper=True, fields=("margin", "margin_decay_steps", "pt_weight"),
    check=_ebgan_check, parameters=_ebgan_parameters, label_of=_ebgan_label,
    label_colors={"EBGAN-PT": "tab:green"}, name_parts=_ebgan_name_parts,
    search_ranges={"lr": (1e-4, 1e-2, True), "margin": (1.0, 32.0, False), "pt_weight": (0.0, 0.3, False)},
    # Lucic et al.'s study: the margin log-uniform over Fig. 9's range (1 to 32), the pulling-away weight over two
    # decades around the paper's 0.1 (as wide as the study's other loss weights, in log scale)
    losses={"EBGAN": {"margin": (1.0, 32.0, True)},
            "EBGAN-PT": {"margin": (1.0, 32.0, True), "pt_weight": (0.01, 1.0, True)}},
    loss_of=lambda row: "EBGAN-PT" if row["pt_weight"] > 0 else "EBGAN",
))


# --- GAN (Goodfellow et al.): binary cross-entropy for D, the non-saturating loss for G -------------------------

GAN = FAMILIES.register(Family(
    name="gan", label="GAN", color="tab:red", discriminator="binary",
    discriminator_loss=lambda real, fake, parameters, step: discriminator_bce(real.value, fake.value),
    generator_loss=lambda fake, parameters: generator_nonsaturating(fake.value), statistic="logit",
    grids={"gan": Grid(lambda: table1_rows("gan", GAN_OPTIMISERS))}, subsets=GAN_SUBSETS, in_the_paper=True,
    label_of=lambda row: "DCGAN" if _is_conv(row) else "GAN", label_colors={"DCGAN": "darkred"},
    search={"optim_d": OPTIMIZERS, "optim_g": OPTIMIZERS, "lr": GAN_LRS},
    search_ranges={"lr": (min(GAN_LRS), max(GAN_LRS), True)},
    losses={"NS-GAN": {}}, loss_of=lambda row: "NS-GAN",
))


# --- The other losses of Lucic et al. (2018), "Are GANs Created Equal?", as google/compare_gan computes them -------
# Each on Table 1's networks, with a Table 1 grid of its own (the GAN's 12 optimiser settings) and its part of the
# study's sampled grid (``losses``: the ranges of compare_gan's src/params.py, "wide").

def _binary_family(name: str, label: str, color: str, **entries: Any) -> Family:
    """A family with the binary discriminator, a Table 1 grid named after it and the GAN's subsets."""
    statistic = entries.pop("statistic", "logit")
    return Family(name=name, label=label, color=color, discriminator="binary", statistic=statistic,
                  grids={name: Grid(lambda: table1_rows(name, GAN_OPTIMISERS))}, subsets=GAN_SUBSETS,
                  losses={label: entries.pop("ranges", {})}, **entries)


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] values shaped to broadcast over ``like`` [B, ...]."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def _penalty_at(points: torch.Tensor, discriminate: Callable[[torch.Tensor], Outputs],
                parameters: Parameters) -> torch.Tensor:
    points.requires_grad_(True)
    return parameters["penalty_weight"] * gradient_penalty(discriminate(points).value, points)


def _wgan_gp_penalty(discriminate: Callable[[torch.Tensor], Outputs], real: torch.Tensor, fake: torch.Tensor,
                     parameters: Parameters, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """lambda E[(||grad D(x_hat)|| - 1)^2] at x_hat = x + alpha (G(z) - x), alpha ~ U[0, 1) per sample."""
    alpha = member_draws(generators, (real.shape[1], 1), real.device, real.dtype)
    return _penalty_at(real + alpha * (fake - real), discriminate, parameters)


def _dragan_penalty(discriminate: Callable[[torch.Tensor], Outputs], real: torch.Tensor, fake: torch.Tensor,
                    parameters: Parameters, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """lambda E[(||grad D(x_noisy)|| - 1)^2] at x_noisy = clip(x + std(x) (u - 0.5), -1, 1), u ~ U[0, 1) per pixel,
    std(x) over the member's whole real batch (compare_gan's, its clip to the data's range [0, 1] here [-1, 1])."""
    # Member by member: a reduction over one member's whole batch splits across threads by the tensor's shape, so a
    # reduction over every member at once would sum a member's batch in another order in another group.
    std = torch.stack([member.var(correction=0) for member in real]).sqrt().view(-1, 1, 1)
    noisy = (real + std * (member_draws(generators, real.shape[1:], real.device, real.dtype) - 0.5)).clamp(-1, 1)
    return _penalty_at(noisy, discriminate, parameters)


@torch.no_grad()
def _clip_weights(discriminator: nn.Module, real: Outputs, fake: Outputs, parameters: Parameters,
                  active: torch.Tensor) -> None:
    """WGAN: every discriminator parameter clipped to [-c, c] after each update (c per member; clipping a frozen
    member's clipped weights again leaves them as they are)."""
    for param in discriminator.parameters():
        bound = _per_member(parameters["clip"], param)
        param.copy_(torch.minimum(torch.maximum(param, -bound), bound))


def _began_parameters(configs: Sequence[TrialConfig], values: Callable[[list[float]], torch.Tensor]) -> Parameters:
    """gamma and lambda_k [B], and the control variable k_t [B], 0 at the start."""
    return {"began_gamma": values([c.began_gamma for c in configs]),
            "began_lambda_k": values([c.began_lambda_k for c in configs]), "k": values([0.0] * len(configs))}


@torch.no_grad()
def _began_control(discriminator: nn.Module, real: Outputs, fake: Outputs, parameters: Parameters,
                   active: torch.Tensor) -> None:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) from the update's losses, for active members."""
    k = parameters["k"]
    updated = began_k_update(k, real.value.mean(-1), fake.value.mean(-1), parameters["began_gamma"],
                             parameters["began_lambda_k"])
    k.copy_(torch.where(active, updated, k))


MM_GAN = FAMILIES.register(_binary_family(
    "mm-gan", "MM-GAN", "tab:orange",
    discriminator_loss=lambda real, fake, parameters, step: discriminator_bce(real.value, fake.value),
    generator_loss=lambda fake, parameters: generator_minimax(fake.value)))

LSGAN = FAMILIES.register(_binary_family(
    "lsgan", "LSGAN", "tab:purple", statistic="output",
    discriminator_loss=lambda real, fake, parameters, step: least_squares_discriminator(sigmoid(real.value),
                                                                                       sigmoid(fake.value)),
    generator_loss=lambda fake, parameters: least_squares_generator(sigmoid(fake.value))))

WGAN = FAMILIES.register(_binary_family(
    "wgan", "WGAN", "tab:brown", statistic="critic", fields=("clip",), ranges={"clip": (1e-3, 1.0, True)},
    discriminator_loss=lambda real, fake, parameters, step: wasserstein_discriminator(real.value, fake.value),
    generator_loss=lambda fake, parameters: wasserstein_generator(fake.value),
    after_discriminator_update=_clip_weights, name_parts=lambda row: [f"clip={row['clip']:.3g}"]))

WGAN_GP = FAMILIES.register(_binary_family(
    "wgan-gp", "WGAN-GP", "tab:pink", statistic="critic", fields=("penalty_weight",),
    ranges={"penalty_weight": (0.1, 100.0, True)},
    discriminator_loss=lambda real, fake, parameters, step: wasserstein_discriminator(real.value, fake.value),
    generator_loss=lambda fake, parameters: wasserstein_generator(fake.value), penalty=_wgan_gp_penalty,
    name_parts=lambda row: [f"gp={row['penalty_weight']:.3g}"]))

DRAGAN = FAMILIES.register(_binary_family(
    "dragan", "DRAGAN", "tab:olive", fields=("penalty_weight",), ranges={"penalty_weight": (0.1, 100.0, True)},
    discriminator_loss=lambda real, fake, parameters, step: discriminator_bce(real.value, fake.value),
    generator_loss=lambda fake, parameters: generator_nonsaturating(fake.value), penalty=_dragan_penalty,
    name_parts=lambda row: [f"gp={row['penalty_weight']:.3g}"]))

HINGE = FAMILIES.register(_binary_family(
    "hinge", "Hinge", "tab:gray", statistic="critic",
    discriminator_loss=lambda real, fake, parameters, step: hinge_discriminator(real.value, fake.value),
    generator_loss=lambda fake, parameters: wasserstein_generator(fake.value)))

BEGAN = FAMILIES.register(Family(
    name="began", label="BEGAN", color="tab:cyan", discriminator="auto-encoder-l1", statistic="error",
    # L_D = L(x) - k_t L(G(z)),  L_G = L(G(z)),  L = the mean absolute reconstruction error
    discriminator_loss=lambda real, fake, parameters, step: real.value.mean(-1) - parameters["k"] * fake.value.mean(-1),
    generator_loss=lambda fake, parameters: fake.value.mean(-1),
    grids={"began": Grid(lambda: table1_rows("began", EBGAN_OPTIMISERS))}, subsets=EBGAN_SUBSETS,
    fields=("began_gamma", "began_lambda_k"), parameters=_began_parameters, after_discriminator_update=_began_control,
    state=("k",), losses={"BEGAN": {"began_lambda_k": (1e-4, 1e-2, True), "began_gamma": (0.0, 1.0, False)}},
    name_parts=lambda row: [f"gamma={row['began_gamma']:.3g}", f"lambda_k={row['began_lambda_k']:.3g}"]))
