"""One immutable, hashed configuration per trial (as in compare_gan).

``config_hash`` identifies *what is trained* (everything that changes the result except the seed);
the seed is stored beside it, so (config_hash, seed) names one run. ``group_key`` says which
configurations can be trained together as one stacked model.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ebgan_core.data import IMAGE_SIDE  # Table 1's images: MNIST padded to 32x32
from ebgan_core.hashed_config import HashedConfig, fail
from ebgan_core.table1.families import FAMILIES

OPTIMIZERS = ("adam", "sgd")
ARCHITECTURES = ("mlp", "conv")  # Table 1's fully connected networks; the paper's convolutional ones (Appendix C)
GENERATORS = ("dcgan", "noise-fed")  # the convolutional generators: Appendix C's (DCGAN's), Section 4.4's
PRECISIONS = ("fp32", "bf16")  # matmul precision of training (ebgan_core.precision)
HASH_SCHEMA = 1  # bump when the meaning of a field changes; old hashes then never collide with new ones


@dataclass(frozen=True)
class TrialConfig(HashedConfig):
    """Every setting of one run. Field names follow Table 1 (nLayerG -> n_layer_g, ...)."""

    family: str = "ebgan"  # a registered family (ebgan_core.table1.families)
    architecture: Literal["mlp", "conv"] = "mlp"  # conv: the paper's convolutional networks (ebgan_core.conv.models)
    # The fully connected networks' shapes (architecture mlp),
    n_layer_g: int = 5
    n_layer_d: int = 2
    size_g: int = 800
    size_d: int = 1024
    dropout_d: bool = False
    # and the convolutional ones' (architecture conv): images of image_size x image_size (MNIST resized to it), and
    # the maps of D's first layer and of G's last hidden layer (64 in the paper), doubling at each stride-2 layer.
    image_size: int = 32
    width: int = 64
    channels: int = 1  # 1: grey, 3: RGB (a folder of colour images)
    generator: str = "dcgan"  # dcgan: Appendix C's; noise-fed: Section 4.4's, noise planes into every layer
    dataset: str = "mnist"  # mnist, or folder-<sha256 of an image folder's listing> (ebgan_core.image_folder)
    optim_d: Literal["adam", "sgd"] = "adam"
    optim_g: Literal["adam", "sgd"] = "adam"
    lr: float = 0.001
    # Settings only some families use (OPTIONAL_FIELDS; a family's entry says which): EBGAN's,
    margin: float = 10.0
    margin_decay_steps: int = 0  # the margin falls linearly to 0 over this many steps (Appendix E); 0 = fixed
    pt_weight: float = 0.0  # lambda_PT of the pulling-away term (0.1 for EBGAN-PT)
    # and those of Lucic et al.'s losses (their defaults: compare_gan's).
    penalty_weight: float = 10.0  # lambda of the gradient penalty (WGAN-GP, DRAGAN)
    clip: float = 0.01  # the bound WGAN clips every discriminator parameter to after each update
    began_gamma: float = 0.75  # BEGAN's diversity ratio gamma
    began_lambda_k: float = 0.001  # BEGAN's learning rate lambda_k of its control variable k_t
    batch_size: int = 64
    noise_dim: int = 100
    steps: int = 3000  # generator (and discriminator) updates
    seed: int = 0
    # Settings the paper leaves open (docs/settings.md).
    dropout_rate: float = 0.5
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    sgd_momentum: float = 0.0
    data_seed: int = 0  # order of the real batches, shared by the members of a group
    score_samples: int = 1000  # generated samples behind every score
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: bfloat16 GEMMs, float32 weights, optimiser state and losses
    # Shapes of the work Lucic et al. search over (their defaults are Table 1's).
    disc_iters: int = 1  # discriminator updates per generator update, each on its own real batch and z
    batch_norm_d: bool = True  # batch norm on the discriminator's hidden layers after its first (Table 1's D)

    OPTIONAL_FIELDS = ("margin", "margin_decay_steps", "pt_weight", "penalty_weight", "clip", "began_gamma",
                       "began_lambda_k")  # fields only the families that list them use
    POSITIVE_FIELDS = ("penalty_weight", "clip", "began_lambda_k")  # each a positive finite number
    ARCHITECTURE_FIELDS: ClassVar = {  # fields only one architecture uses
        "mlp": ("n_layer_g", "n_layer_d", "size_g", "size_d", "dropout_d", "dropout_rate"),
        "conv": ("image_size", "width", "channels", "generator")}

    def _validate(self) -> None:
        try:
            family = FAMILIES[self.family]
        except ValueError as exc:
            fail(str(exc))
        if self.architecture not in ARCHITECTURES:
            fail(f"architecture {self.architecture!r} is unknown; use one of {', '.join(ARCHITECTURES)}")
        if self.precision not in PRECISIONS:
            fail(f"precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
        for name in ("optim_d", "optim_g"):
            if getattr(self, name) not in OPTIMIZERS:
                fail(f"{name} {getattr(self, name)!r} is unknown; use one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            fail(f"lr must be a positive finite number, got {self.lr}")
        if self.n_layer_g < 2:
            fail(f"n_layer_g must be >= 2 (one hidden layer and the output layer), got {self.n_layer_g}")
        if self.n_layer_d < 2:
            from ebgan_core.table1.models import DISCRIMINATORS

            fail(f"n_layer_d must be >= 2 ({DISCRIMINATORS[family.discriminator].layers}), got {self.n_layer_d}")
        for name in ("size_g", "size_d", "noise_dim", "steps", "disc_iters"):
            if getattr(self, name) < 1:
                fail(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            fail(f"batch_size must be >= 2 (batch norm and the pulling-away term need pairs), got {self.batch_size}")
        if self.score_samples < 2:
            fail(f"score_samples must be >= 2, got {self.score_samples}")
        if self.margin_decay_steps < 0:
            fail(f"margin_decay_steps must be >= 0 (0 keeps the margin fixed), got {self.margin_decay_steps}")
        if not (math.isfinite(self.pt_weight) and self.pt_weight >= 0):
            fail(f"pt_weight must be >= 0, got {self.pt_weight}")
        for name in self.POSITIVE_FIELDS:
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                fail(f"{name} must be a positive finite number, got {getattr(self, name)}")
        if not 0 <= self.began_gamma <= 1:
            fail(f"began_gamma must be in [0, 1], got {self.began_gamma}")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in self.OPTIONAL_FIELDS:
            if name not in family.fields and getattr(self, name) != defaults[name]:
                users = [f.label for f in FAMILIES if name in f.fields]
                fail(f"{name} applies to {' and '.join(users) or 'no registered family'} only, not to {family.label}; "
                     f"set it to {defaults[name]!r}")
        for architecture, names in self.ARCHITECTURE_FIELDS.items():
            for name in names:
                if architecture != self.architecture and getattr(self, name) != defaults[name]:
                    fail(f"{name} applies to architecture {architecture} only, not to {self.architecture}; "
                         f"set it to {defaults[name]!r}")
        if self.dataset != "mnist" and not re.fullmatch(r"folder-[0-9a-f]{64}", self.dataset):
            fail(f"dataset must be mnist or folder-<sha256 of the folder's listing>, got {self.dataset!r}; fix: pass "
                 "--images DIR to a sweep instead")
        if self.dataset != "mnist" and self.architecture != "conv":
            fail("an image folder trains the convolutional networks only (architecture conv; the images grids)")
        if self.architecture == "conv":
            self._validate_conv(family)
        if family.check is not None:
            family.check(self)
        if not 0 <= self.dropout_rate < 1:
            fail(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        for name in ("adam_beta1", "adam_beta2", "sgd_momentum"):
            if not 0 <= getattr(self, name) < 1:
                fail(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def _validate_conv(self, family: Any) -> None:
        from ebgan_core.conv.models import CONV_DISCRIMINATORS, stride2_layers

        try:
            stride2_layers(self.image_size)
        except ValueError as exc:
            fail(str(exc))
        if self.width < 1:
            fail(f"width must be >= 1, got {self.width}")
        if self.generator not in GENERATORS:
            fail(f"generator {self.generator!r} is unknown; use one of {', '.join(GENERATORS)}")
        if self.channels not in (1, 3):
            fail(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.channels == 3 and self.dataset == "mnist":
            fail("MNIST is grey: channels 3 needs an image folder (--images DIR)")
        if family.discriminator not in CONV_DISCRIMINATORS:
            fail(f"family {family.label} has no convolutional discriminator (its {family.discriminator!r} has "
                 f"none; convolutional ones: {', '.join(CONV_DISCRIMINATORS)}); use architecture mlp")
        if self.precision != "fp32":
            fail("precision bf16 applies to the fully connected networks only (bfloat16 GEMMs); use fp32 with "
                 "architecture conv")

    def canonical(self) -> dict[str, Any]:
        """The fields that change the result, except the seed; settings a config does not use are left out."""
        values = self.to_dict()
        del values["seed"]
        for name in set(self.OPTIONAL_FIELDS) - set(FAMILIES[self.family].fields):
            del values[name]
        if not self.margin_decay_steps:  # a fixed margin: hashes stay those of configs from before the option
            values.pop("margin_decay_steps", None)
        if self.precision == "fp32":  # likewise: float32 configs keep the hashes they had before bf16 existed
            del values["precision"]
        if self.disc_iters == 1:  # and configs with Table 1's shape of the work the hashes from before Lucic's
            del values["disc_iters"]
        if self.batch_norm_d:
            del values["batch_norm_d"]
        if self.architecture == "mlp":  # and Table 1's networks the hashes from before the convolutional ones
            del values["architecture"]
        if self.dataset == "mnist":  # and MNIST's configs the hashes from before image folders
            del values["dataset"]
        if self.channels == 1:
            del values["channels"]
        if self.generator == "dcgan":  # and Appendix C's generator those from before Section 4.4's
            del values["generator"]
        for name in (n for a, names in self.ARCHITECTURE_FIELDS.items() if a != self.architecture for n in names):
            values.pop(name, None)
        if "dropout_rate" in values and not self.dropout_d:
            del values["dropout_rate"]
        if "adam" not in (self.optim_d, self.optim_g):
            del values["adam_beta1"], values["adam_beta2"]
        if "sgd" not in (self.optim_d, self.optim_g):
            del values["sgd_momentum"]
        values["hash_schema"] = HASH_SCHEMA
        return values

    def group_key(self) -> tuple:
        """What members of one stacked group must share: shapes, batch, length, data order, optimiser constants.

        Members may differ in dropout_d, dropout_rate, optim_d, optim_g, lr, adam_beta1, the settings of their
        family's losses (OPTIONAL_FIELDS) and seed.
        """
        return (
            self.family,
            self.precision,
            self.architecture,
            self.image_size,
            self.width,
            self.channels,
            self.generator,
            self.dataset,
            self.n_layer_g,
            self.size_g,
            self.n_layer_d,
            self.size_d,
            self.batch_size,
            self.noise_dim,
            self.steps,
            self.data_seed,
            self.score_samples,
            self.adam_beta2,
            self.sgd_momentum,
            self.disc_iters,
            self.batch_norm_d,
        )

    def image_side(self) -> int:
        """The side of the images its members train on: Table 1's 32, or a convolutional config's size."""
        return self.image_size if self.architecture == "conv" else IMAGE_SIDE

    def noise_inputs(self) -> int:
        """Noise values per generated image: z's noise_dim, and the noise-fed generator's planes besides."""
        if self.architecture == "conv" and self.generator == "noise-fed":
            from ebgan_core.conv.models import noise_plane_values

            return self.noise_dim + noise_plane_values(self.image_size)
        return self.noise_dim

    def widths_divided_by(self, divisor: int) -> TrialConfig:
        """This config with sizeG and sizeD (a convolutional config: its width) divided by ``divisor`` (at least 1
        unit each): the shapes at a fraction of their widths, as the CPU profiles and the calibration run them."""
        if self.architecture == "conv":
            return self.replace(width=max(1, self.width // divisor))
        return self.replace(size_g=max(1, self.size_g // divisor), size_d=max(1, self.size_d // divisor))

    def short_name(self) -> str:
        """A readable one-line label, e.g. ``ebgan G5x800 D2x1024 adam/adam lr=0.001 m=10``."""
        if self.architecture == "conv":
            parts = [self.family, f"conv{self.image_size} w{self.width}" + ("" if self.channels == 1 else " rgb")]
            if self.generator != "dcgan":
                parts.append(f"G={self.generator}")
        else:
            parts = [self.family, f"G{self.n_layer_g}x{self.size_g}", f"D{self.n_layer_d}x{self.size_d}"]
        parts.append(f"{self.optim_d}/{self.optim_g}")
        parts.append(f"lr={self.lr:g}")
        if self.dropout_d:
            parts.append(f"dropout={self.dropout_rate:g}")
        if "adam" in (self.optim_d, self.optim_g) and self.adam_beta1 != 0.5:
            parts.append(f"beta1={self.adam_beta1:.3g}")
        if self.disc_iters != 1:
            parts.append(f"n_disc={self.disc_iters}")
        if not self.batch_norm_d:
            parts.append("no-bn-d")
        name_parts = FAMILIES[self.family].name_parts
        if name_parts is not None:
            parts += name_parts(self.to_dict())
        if self.precision != "fp32":
            parts.append(self.precision)
        return " ".join(parts)


FIELD_HELP = {  # what each field means, for `ebgan train`'s flags (Table 1's names: nLayerG -> n_layer_g, ...)
    "family": "the GAN's family (losses and discriminator), e.g. ebgan, gan, wgan-gp",
    "architecture": "mlp: Table 1's fully connected networks; conv: the paper's convolutional ones (DCGAN's G and D, "
                    "EBGAN's convolutional auto-encoder)",
    "image_size": "conv: the images' side (a power of 2 times 4, >= 16: 32, 64, 128); MNIST is resized to it",
    "width": "conv: maps of D's first layer and G's last hidden layer (the paper's 64), doubled per stride-2 layer",
    "channels": "conv: 1 (grey) or 3 (RGB, an image folder of colour images)",
    "generator": "conv: dcgan (Appendix C's, DCGAN's generator) or noise-fed (Section 4.4's: noise planes 64, 32, ... "
                 "concatenated into every layer, one more layer at the last width, a 3x3 output convolution)",
    "dataset": "mnist, or folder-<sha256 of an image folder's listing> (set by a sweep's --images DIR)",
    "n_layer_g": "generator layers (Table 1's nLayerG: hidden layers + the output layer)",
    "n_layer_d": "discriminator layers (Table 1's nLayerD)",
    "size_g": "units per generator hidden layer (Table 1's sizeG)",
    "size_d": "units per discriminator hidden layer (Table 1's sizeD)",
    "dropout_d": "dropout after the discriminator's hidden layers (Table 1's dropoutD)",
    "optim_d": "the discriminator's optimiser (Table 1's optimD)",
    "optim_g": "the generator's optimiser (Table 1's optimG)",
    "lr": "learning rate of both optimisers",
    "margin": "EBGAN's margin m",
    "margin_decay_steps": "EBGAN: the margin falls linearly to 0 over this many steps (Appendix E); 0 keeps it",
    "pt_weight": "EBGAN's pulling-away weight lambda_PT (0.1 for EBGAN-PT; 0: plain EBGAN)",
    "penalty_weight": "WGAN-GP's and DRAGAN's gradient penalty weight lambda",
    "clip": "WGAN's weight clipping bound",
    "began_gamma": "BEGAN's diversity ratio gamma, in [0, 1]",
    "began_lambda_k": "BEGAN's learning rate lambda_k of its control variable k_t",
    "batch_size": "samples per batch (real and generated)",
    "noise_dim": "dimensions of the generator's noise z",
    "steps": "generator updates (training length)",
    "seed": "the run's seed (weights, noise, dropout, scoring samples)",
    "dropout_rate": "the discriminator's dropout rate, where dropout is on",
    "adam_beta1": "Adam's beta1",
    "adam_beta2": "Adam's beta2",
    "sgd_momentum": "SGD's momentum",
    "data_seed": "the order of the real batches",
    "score_samples": "generated samples behind every score (I', IS, Fréchet distance)",
    "precision": "matmul precision: fp32, or bf16 (bfloat16 products, float32 weights and optimiser state)",
    "disc_iters": "discriminator updates per generator update, each on its own real batch",
    "batch_norm_d": "batch norm on the discriminator's hidden layers after the first",
}
CHOICES = {"optim_d": OPTIMIZERS, "optim_g": OPTIMIZERS, "precision": PRECISIONS,  # fields of a fixed set of values
           "architecture": ARCHITECTURES, "generator": GENERATORS}

_FIG4B = TrialConfig(family="ebgan", n_layer_g=5, n_layer_d=2, size_g=800, size_d=1024, dropout_d=False,
                     optim_d="adam", optim_g="adam", lr=0.001, margin=10.0)
_CONV = TrialConfig(family="ebgan", architecture="conv", image_size=64, width=64, lr=0.0002, margin=10.0)
PRESETS: dict[str, TrialConfig] = {
    # Appendix C, the configurations behind Figure 4.
    "fig4a": TrialConfig(family="gan", n_layer_g=5, n_layer_d=2, size_g=1600, size_d=1024, dropout_d=False,
                         optim_d="sgd", optim_g="sgd", lr=0.01),
    "fig4b": _FIG4B,
    "fig4c": _FIG4B.replace(pt_weight=0.1),  # "same as (b), with lambda_PT = 0.1"
    # Section 4.3 and Appendix C's convolutional models on 64x64 images, trained as Radford et al. advise (Adam, lr
    # 0.0002, beta1 0.5, batch norm); on MNIST the margin is Table 1's (the same images, so the same energy scale).
    # Figs. 5 and 6 compare DCGAN with EBGAN-PT, Figs. 12-14 EBGAN with EBGAN-PT.
    "conv-dcgan": _CONV.replace(family="gan"),
    "conv-ebgan": _CONV,
    "conv-ebgan-pt": _CONV.replace(pt_weight=0.1),
    # Section 4.4's deeper EBGAN-PT at 128x128 (Fig. 7: its noise-fed generator, the auto-encoder one stride-2 layer
    # deeper each way) and DCGAN on the same generator; the margin stays MNIST's, as at 64x64 (the paper's 40 was for
    # ImageNet's images).
    "conv-dcgan-128": _CONV.replace(family="gan", image_size=128, generator="noise-fed"),
    "conv-ebgan-pt-128": _CONV.replace(image_size=128, generator="noise-fed", pt_weight=0.1),
}
