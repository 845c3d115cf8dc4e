"""A Table 1 step replayed from a captured CUDA graph: what the replay relies on, checked on the CPU (the step's number
as a device tensor, the step counts on the device, the plan of generators and counters), and on a CUDA device where
there is one, captured training against eager training."""

from __future__ import annotations

import json

import pytest
import torch

from ebgan_core import cuda_graph
from ebgan_core.rng import member_generators, real_batches
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.train import STREAMS, GanGroup, train_group

EBGAN = TrialConfig(family="ebgan", n_layer_g=3, size_g=32, n_layer_d=3, size_d=16, batch_size=16, noise_dim=8,
                    steps=12, score_samples=32)
MEMBERS = [EBGAN.replace(margin_decay_steps=8, dropout_d=True), EBGAN.replace(pt_weight=0.1, seed=2),
           EBGAN.replace(optim_d="sgd", optim_g="sgd", lr=1e-2, margin_decay_steps=5, seed=3)]


def stepped_group(mnist_train, judge, as_tensor: bool, steps: int = 10) -> GanGroup:
    """The three members above, stepped with the update a captured step uses (not the CPU's fused kernels), given
    each step's number as a Python int or as a 0-dim int64 tensor (as a replay gives it)."""
    group = GanGroup(MEMBERS, [member_generators(c, STREAMS) for c in MEMBERS], torch.device("cpu"), torch.float32,
                     judge=judge)
    group.optimizer_d.update = group.optimizer_g.update = "eager"
    batches = real_batches(mnist_train[0][:2048].reshape(2048, -1), EBGAN.batch_size, EBGAN.data_seed)
    active = torch.ones(len(MEMBERS), dtype=torch.bool)
    for step in range(steps):
        finite, _ = group.step(torch.tensor(step) if as_tensor else step, next(batches).expand(3, -1, -1), active)
        assert finite.all()
    return group


def test_a_step_given_its_number_as_a_device_tensor_is_the_same_step(mnist_train, judge):
    """Margin decay reads the step's number: as a tensor it must give the same numbers, bit for bit."""
    by_int, by_tensor = (stepped_group(mnist_train, judge, as_tensor) for as_tensor in (False, True))
    for (name, a), b in zip(by_int.model.state_dict().items(), by_tensor.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(by_int.optimizer_d.state["exp_avg"], by_tensor.optimizer_d.state["exp_avg"], strict=True):
        assert torch.equal(a, b)
    assert by_int.optimizer_g.steps == by_tensor.optimizer_g.steps == 10
    assert by_tensor.optimizer_g._step_count.item() == 10  # the device count a replay advances


def test_the_capture_plan_names_every_generator_the_step_draws_from_and_its_counters(judge):
    group = GanGroup(MEMBERS, [member_generators(c, STREAMS) for c in MEMBERS], torch.device("cpu"), torch.float32,
                     judge=judge)
    assert group.capture_plan() is None, "the CPU's fused optimiser reads the active members on the host"
    group.optimizer_d.update = group.optimizer_g.update = "compiled"
    plan = group.capture_plan()
    drawn_from = {id(s[name]) for s in group.streams for name in ("noise", "dropout")}
    assert {id(g) for g in plan.generators} == drawn_from and len(drawn_from) == 2 * len(MEMBERS)
    assert plan.counters == [(group.optimizer_d, "steps"), (group.optimizer_g, "steps")]
    bf16 = [c.replace(precision="bf16") for c in MEMBERS]
    group = GanGroup(bf16, [member_generators(c, STREAMS) for c in bf16], torch.device("cpu"), torch.float32,
                     judge=judge)
    group.optimizer_d.update = group.optimizer_g.update = "compiled"
    assert group.capture_plan() is None, "bf16 weight copies are remade on the host's say-so"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (captured graphs exist only there)")
def test_captured_training_equals_eager_training_on_cuda(mnist_train, judge, monkeypatch):
    monkeypatch.setenv(cuda_graph.SWITCH, "1")  # capture whether or not this GPU has a recorded validation
    configs = [c.replace(steps=20) for c in MEMBERS]
    data = mnist_train[0][:4096]
    captured, eager = (train_group(configs, data, judge.to("cuda"), device="cuda", keep_state=True, cuda_graph=graph)
                       for graph in (True, False))
    for a, b in zip(captured, eager, strict=True):
        assert a.curves == b.curves and a.scores == b.scores
        for part in ("generator", "discriminator"):
            for name, tensor in b.state[part].items():
                assert torch.equal(a.state[part][name], tensor), f"{part}.{name}"


def test_a_step_that_fails_part_way_leaves_the_discriminator_trainable(mnist_train, judge):
    """A capture that fails inside the generator's update goes on with eager steps: the discriminator, frozen for that
    update, must be trainable again."""
    group = GanGroup(MEMBERS, [member_generators(c, STREAMS) for c in MEMBERS], torch.device("cpu"), torch.float32,
                     judge=judge)
    batch = mnist_train[0][:EBGAN.batch_size].reshape(EBGAN.batch_size, -1).expand(3, -1, -1)
    active = torch.ones(len(MEMBERS), dtype=torch.bool)
    pt_weights = group.parameters["pt_weight"]
    group.parameters["pt_weight"] = torch.ones(len(MEMBERS) + 1)  # a shape error in the G loss
    with pytest.raises(RuntimeError, match="size"):
        group.step(0, batch, active)
    assert all(p.requires_grad for p in group.model.discriminator.parameters())
    group.parameters["pt_weight"] = pt_weights
    finite, _ = group.step(1, batch, active)
    assert finite.all()


def test_capture_waits_for_a_recorded_validation_unless_the_switch_says_otherwise(tmp_path):
    assert [cuda_graph.capture_wanted(switch, validated) for switch in (None, "0", "1") for validated in (False, True)
            ] == [False, True, False, False, True, True]
    path = tmp_path / "validated.json"
    h100 = {"device": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "cuda": "12.8"}
    assert not cuda_graph.is_validated(h100, path)  # no record yet
    cuda_graph.record_validation(h100, path)
    cuda_graph.record_validation(h100, path)  # recorded once
    assert cuda_graph.is_validated(h100, path) and len(json.loads(path.read_text())) == 1
    assert not cuda_graph.is_validated(h100 | {"torch": "2.12.0"}, path)  # another PyTorch must prove itself again
    assert not cuda_graph.is_validated(h100 | {"device": "NVIDIA H200"}, path)
    path.write_text("{not json")
    assert not cuda_graph.is_validated(h100, path)


@pytest.mark.slow
def test_the_gpu_checks_comparison_catches_a_fast_path_that_computes_something_else(mnist_train, judge, monkeypatch):
    """gpu_check's captured-step check, given a deliberately wrong fast path (the default-path run nudges one weight
    of every member after training, as a capture that replays a stale kernel would), fails and records nothing."""
    import benchmarks.gpu_check as gpu_check

    real_train_group = gpu_check.train_group

    def wrong_fast_path(configs, *args, cuda_graph: bool = True, **kwargs):
        results = real_train_group(configs, *args, cuda_graph=cuda_graph, **kwargs)
        if cuda_graph:
            for result in results:
                weight = next(iter(result.state["generator"].values()))
                weight.view(-1)[0] += 1e-3 * weight.abs().max()
        return results

    monkeypatch.setattr(gpu_check, "train_group", wrong_fast_path)
    result = gpu_check.check_captured_step(torch.device("cpu"), mnist_train[0][:2048], judge)
    assert not result["ok"] and result["weights_max_relative_difference"] > result["tolerance"]
    assert result["validation_recorded"] is False
