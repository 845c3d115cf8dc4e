"""Member footprints (shapes, FLOPs, memory) and memory-aware waves."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ebgan_core.group import split_into_waves
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.footprint import flops_per_step, footprint, member_bytes, optimizer_bytes_per_step

SMALL = TrialConfig(n_layer_g=3, size_g=48, n_layer_d=3, size_d=32, batch_size=16, noise_dim=16, score_samples=64)


def paper_element_count(config: TrialConfig, normed: int = 4) -> tuple[int, int]:
    """Parameters + buffers written out from the architecture (Section 4.1, Appendix C).

    A batch-normed layer: in*out weights (no bias) + 2 affine + 2 running statistics per unit (``normed``
    = 2 counts parameters only).
    G: noise -> size (BN), (n-2) x size -> size (BN), size -> 1024 (+bias).
    D: 1024 -> size (+bias, no BN), (n-2) x size -> size (BN), size -> 1024 (+bias) or size -> 1 (+bias).
    """
    g_size, d_size = config.size_g, config.size_d
    generator = (config.noise_dim * g_size + normed * g_size
                 + (config.n_layer_g - 2) * (g_size * g_size + normed * g_size) + g_size * 1024 + 1024)
    d_out = 1024 if config.family == "ebgan" else 1
    discriminator = (1024 * d_size + d_size + (config.n_layer_d - 2) * (d_size * d_size + normed * d_size)
                     + d_size * d_out + d_out)
    return generator, discriminator


@pytest.mark.parametrize("family", ["ebgan", "gan"])
@pytest.mark.parametrize("shape", [(2, 400, 2, 128), (5, 3200, 5, 1024), (3, 800, 4, 256)])
def test_footprint_counts_the_paper_architecture(family, shape):
    n_g, s_g, n_d, s_d = shape
    config = TrialConfig(family=family, n_layer_g=n_g, size_g=s_g, n_layer_d=n_d, size_d=s_d)
    result = footprint(config)
    assert (result.generator_elements, result.discriminator_elements) == paper_element_count(config)
    assert (result.generator_parameters, result.discriminator_parameters) == paper_element_count(config, normed=2)
    assert len(result.generator_layers) == n_g and len(result.discriminator_layers) == n_d
    d_out = 1024 if family == "ebgan" else 1
    g_macs = config.noise_dim * s_g + (n_g - 2) * s_g * s_g + s_g * 1024
    d_macs = 1024 * s_d + (n_d - 2) * s_d * s_d + s_d * d_out
    assert flops_per_step(config) == 2 * config.batch_size * (4 * g_macs + 8 * d_macs)


def test_optimizer_traffic_counts_each_state_tensor():
    """Per element: read parameter and gradient, write parameter (3), plus read + write of each state."""
    g, d = paper_element_count(SMALL, normed=2)
    adam_sgd = SMALL.replace(optim_g="adam", optim_d="sgd", sgd_momentum=0.0)
    assert optimizer_bytes_per_step(adam_sgd) == 4 * (7 * g + 3 * d)
    assert optimizer_bytes_per_step(adam_sgd.replace(sgd_momentum=0.9)) == 4 * (7 * g + 5 * d)
    assert optimizer_bytes_per_step(adam_sgd, torch.float64) == 8 * (7 * g + 3 * d)


def test_waves_hold_as_many_members_as_the_budget_allows():
    configs = [SMALL.replace(seed=s) for s in range(5)]
    one = member_bytes(SMALL)
    assert [len(w) for w in split_into_waves(configs, int(2.5 * one), member_bytes)] == [2, 2, 1]
    assert [len(w) for w in split_into_waves(configs, one // 2, member_bytes)] == [1] * 5  # a member always trains
    assert split_into_waves(configs, 100 * one, member_bytes) == [configs]
    assert member_bytes(SMALL, torch.float64) > member_bytes(SMALL)


PEAK_MEMORY_SCRIPT = """
import sys
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.config import TrialConfig
from ebgan_core.data import load_mnist
from ebgan_core.table1.train import train_group

def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

judge, _ = load_classifier()
data = load_mnist("train")[0][:2048]
config = TrialConfig.from_dict(eval(sys.argv[2]))
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")  # reset the peak resident size (VmHWM) to the current one
before = status_kib("VmRSS")
train_group([config.replace(seed=s) for s in range(int(sys.argv[1]))], data, judge, memory_budget=10**12)
print((status_kib("VmHWM") - before) * 1024)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads and resets /proc/self peak memory")
def test_member_bytes_bounds_the_measured_peak_memory_of_a_member():
    """Peak RSS grows by at most member_bytes per extra member, and by more than half of it (B = 1 vs 4)."""
    config = TrialConfig(n_layer_g=3, size_g=1600, n_layer_d=3, size_d=512, steps=3, score_samples=1000)

    def peak_growth(members: int) -> int:
        command = [sys.executable, "-c", PEAK_MEMORY_SCRIPT, str(members), repr(config.to_dict())]
        return int(subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1])

    per_member = (peak_growth(4) - peak_growth(1)) / 3
    estimate = member_bytes(config)
    assert 0.5 * estimate < per_member < estimate, (per_member / 2**20, estimate / 2**20)


def test_a_sweeps_projected_flops_count_training_and_every_scoring():
    from ebgan_core.table2.config import LadderConfig
    from ebgan_core.table2.footprint import flops_per_run, flops_per_score
    from sweeps.projection import JUDGE_FLOPS_PER_IMAGE, sweep_flops

    config = TrialConfig(n_layer_g=2, size_g=32, n_layer_d=2, size_d=16, noise_dim=8, steps=100, score_samples=40)
    generate = 2 * (8 * 32 + 32 * 1024)  # the generator's forward matmuls per sample
    per_image = generate + JUDGE_FLOPS_PER_IMAGE
    # Scored at 30, 60 and 90 on 10 samples each, and at the end on 40.
    assert sweep_flops([config], 30, interim_samples=10) == 100 * flops_per_step(config) + (40 + 3 * 10) * per_image
    assert sweep_flops([config], 0) == 100 * flops_per_step(config) + 40 * per_image
    # A ladder step at the paper's widths: the labelled and unlabelled corrupted passes and the decoder, forward and
    # backward, 2.77 GFLOP (docs/findings.md); it is scored on the 10,000 test and bn_samples training images.
    ln = LadderConfig(family="ln", steps=10, decay_start=5)
    assert flops_per_run(ln) / ln.steps == pytest.approx(2.77e9, rel=0.01)
    assert sweep_flops([ln], 5) == flops_per_run(ln) + 2 * flops_per_score(ln)
