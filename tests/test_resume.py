"""Mid-training checkpoints: a group stopped at any step and resumed from its saved state ends bit-for-bit as an
uninterrupted run (weights, batch-norm statistics, optimiser state, random streams, data order, curves, scores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.group import GROUP_STATE_FORMAT, Checkpointing, MemberResult
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.footprint import member_bytes
from ebgan_core.table1.train import train_group

BASE = TrialConfig(family="ebgan", n_layer_g=3, size_g=48, n_layer_d=3, size_d=32, batch_size=16, noise_dim=16,
                   steps=24, score_samples=64)
# Every per-member stream and state in play: Adam moments, SGD momentum, dropout, margin decay, the PT term.
EBGAN_GROUP = [
    BASE.replace(optim_d="adam", optim_g="adam", lr=1e-3, dropout_d=True, seed=0),
    BASE.replace(optim_d="sgd", optim_g="adam", lr=1e-2, margin=5.0, margin_decay_steps=20, seed=1),
    BASE.replace(optim_d="adam", optim_g="sgd", lr=2e-3, pt_weight=0.1, dropout_d=True, seed=2),
]
GAN_GROUP = [
    BASE.replace(family="gan", optim_d="sgd", optim_g="sgd", lr=1e-2, sgd_momentum=0.9, dropout_d=True, seed=s)
    for s in range(2)
]


class WorkerKilledError(Exception):
    """Stands in for a killed worker: raised by the save hook right after a state was written."""


@pytest.fixture(scope="module")
def small_data(mnist_train) -> torch.Tensor:
    return mnist_train[0][:176]  # 11 batches of 16 per epoch: 24 steps cross two epoch boundaries


def interrupted_state(configs, data, judge, tmp_path: Path, stop_at, memory_budget=10**12, score_steps=()) -> dict:
    """Train with a checkpoint after every step; stop once ``stop_at(state)`` holds; the state as read from disk."""
    path = tmp_path / "group.pt"

    def save(state: dict) -> None:
        save_group_state(path, state)
        if stop_at(state):
            raise WorkerKilledError

    with pytest.raises(WorkerKilledError):
        train_group(configs, data, judge, keep_state=True, memory_budget=memory_budget, score_steps=score_steps,
                    checkpointing=Checkpointing(every_s=0.0, save=save))
    return load_group_state(path)


def assert_identical(resumed: list[MemberResult], uninterrupted: list[MemberResult]) -> None:
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert (a.config, a.status, a.steps, a.group_size) == (b.config, b.status, b.steps, b.group_size)
        assert a.scores == b.scores
        assert a.curves == b.curves
        assert np.array_equal(a.sample_grid, b.sample_grid)
        for part in ("generator", "discriminator"):
            for name, tensor in b.state[part].items():
                assert torch.equal(a.state[part][name], tensor), f"{part}.{name}"


@pytest.mark.parametrize("configs", [EBGAN_GROUP, GAN_GROUP], ids=["ebgan", "gan"])
@pytest.mark.parametrize("stop_step", [1, 13])  # first step; mid second epoch, mid margin decay
def test_a_resumed_group_equals_an_uninterrupted_one(configs, stop_step, small_data, judge, tmp_path):
    uninterrupted = train_group(configs, small_data, judge, keep_state=True)
    state = interrupted_state(configs, small_data, judge, tmp_path, lambda s: s["run"]["step"] == stop_step)
    assert state["run"]["step"] == stop_step and state["wave"] == 0
    resumed = train_group(configs, small_data, judge, keep_state=True,
                          checkpointing=Checkpointing(every_s=3600.0, save=lambda s: None, resume=state))
    assert_identical(resumed, uninterrupted)
    # The members really trained apart from each other, and past the stop (the check above can fail).
    assert resumed[0].curves != resumed[1].curves and resumed[0].steps == BASE.steps


def test_a_group_resumed_in_its_second_wave_keeps_the_first_waves_results(small_data, judge, tmp_path):
    configs = [BASE.replace(seed=s, lr=lr) for s, lr in enumerate((1e-4, 5e-4, 1e-3))]
    budget = int(2.5 * member_bytes(BASE))  # waves of 2 and 1
    uninterrupted = train_group(configs, small_data, judge, keep_state=True, memory_budget=budget)
    state = interrupted_state(configs, small_data, judge, tmp_path,
                              lambda s: s["wave"] == 1 and s["run"]["step"] == 7, memory_budget=budget)
    assert len(state["finished"]) == 2
    # Resumed with a budget that would split the group otherwise: the saved split is kept.
    resumed = train_group(configs, small_data, judge, keep_state=True, memory_budget=10**12,
                          checkpointing=Checkpointing(every_s=3600.0, save=lambda s: None, resume=state))
    assert [r.group_size for r in resumed] == [2, 2, 1]
    assert_identical(resumed, uninterrupted)


def test_a_checkpoint_is_saved_on_the_clock_not_every_step(small_data, judge):
    saved: list[int] = []
    train_group(EBGAN_GROUP, small_data, judge,
                checkpointing=Checkpointing(every_s=3600.0, save=lambda s: saved.append(s["run"]["step"])))
    assert saved == []


def test_a_state_for_other_members_is_refused(small_data, judge, tmp_path):
    state = interrupted_state(EBGAN_GROUP, small_data, judge, tmp_path, lambda s: s["run"]["step"] == 2)
    others = [c.replace(seed=c.seed + 10) for c in EBGAN_GROUP]
    with pytest.raises(ValueError, match="other members"):
        train_group(others, small_data, judge, checkpointing=Checkpointing(3600.0, lambda s: None, resume=state))


def test_a_damaged_group_checkpoint_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "group.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"corrupt or not ours.*fix: delete it"):
        load_group_state(path)
    torch.save({"format": 99}, path)
    with pytest.raises(CheckpointError, match="not a group state"):
        load_group_state(path)
    # A state saved before the shared group runner (format 1, each study's own layout) is refused in one line, and
    # so is one from before sample grids along training (version 2).
    torch.save({"format": 1, "members": [], "run": {"step": 3}}, path)
    with pytest.raises(CheckpointError, match=r"has version 1, which this ebgan-sweep does not resume .*fix: delete"):
        load_group_state(path)
    torch.save({"format": GROUP_STATE_FORMAT, "version": 2, "members": []}, path)
    with pytest.raises(CheckpointError, match=r"has version 2, which this ebgan-sweep does not resume"):
        load_group_state(path)


def test_scores_along_the_way_leave_the_result_unchanged_and_survive_a_resume(small_data, judge, tmp_path):
    plain = train_group(EBGAN_GROUP, small_data, judge, keep_state=True)
    steps = (6, 12, 18)
    scored = train_group(EBGAN_GROUP, small_data, judge, keep_state=True, score_steps=steps)
    assert_identical(scored, plain)
    for result in scored:
        assert sorted(result.interim_scores) == list(steps)
        assert all(s["n_samples"] == BASE.score_samples and s["i_prime"] > 0 for s in result.interim_scores.values())
    assert scored[0].interim_scores[6] != scored[0].interim_scores[18] != scored[0].scores
    for result in scored:  # a sample grid at each scored step too, from the same fixed z as the final one
        assert sorted(result.interim_sample_grids) == list(steps)
        assert all(g.shape == result.sample_grid.shape for g in result.interim_sample_grids.values())
        assert not np.array_equal(result.interim_sample_grids[6], result.sample_grid)
    state = interrupted_state(EBGAN_GROUP, small_data, judge, tmp_path, lambda s: s["run"]["step"] == 14,
                              score_steps=steps)
    resumed = train_group(EBGAN_GROUP, small_data, judge, keep_state=True, score_steps=steps,
                          checkpointing=Checkpointing(every_s=3600.0, save=lambda s: None, resume=state))
    assert [r.interim_scores for r in resumed] == [r.interim_scores for r in scored]
    for before, after in zip(scored, resumed, strict=True):
        assert before.interim_sample_grids.keys() == after.interim_sample_grids.keys()
        assert all(np.array_equal(before.interim_sample_grids[s], after.interim_sample_grids[s]) for s in steps)


@pytest.mark.parametrize("step", [0, BASE.steps, -3])
def test_score_steps_outside_the_run_are_refused(step, small_data, judge):
    with pytest.raises(ValueError, match=r"score_steps must lie in 1\.\.steps-1"):
        train_group(EBGAN_GROUP, small_data, judge, score_steps=(step,))


def test_interim_scores_may_draw_fewer_samples_and_leave_the_result_unchanged(small_data, judge):
    plain = train_group(EBGAN_GROUP, small_data, judge, keep_state=True)
    scored = train_group(EBGAN_GROUP, small_data, judge, keep_state=True, score_steps=(8, 16), interim_samples=16)
    assert_identical(scored, plain)
    assert all(s["n_samples"] == 16 for r in scored for s in r.interim_scores.values())
    assert all(r.scores["n_samples"] == BASE.score_samples for r in scored)
    with pytest.raises(ValueError, match="interim_samples must be >= 2"):
        train_group(EBGAN_GROUP, small_data, judge, score_steps=(8,), interim_samples=1)
