"""The group runner every study shares: train B members that share shapes as one stacked model, and score them.

A study supplies a ``GroupModel``: its members' networks and optimisers, one training step, its scores, its sample
grids and its state. The runner supplies the rest, once for every study: waves of members that fit in memory, the
step loop with progress, scoring along the way, the checkpoint clock, divergence bookkeeping (a member whose loss
turns NaN/inf is frozen and stored as diverged; the others go on), each member's random streams, saving and loading
the whole training state, and the members' results.

A member draws the same random numbers alone or in any group: its streams are derived from (seed, config hash,
stream name), and every real batch is shared by the group (``real_batches``). On a CPU it also takes the same
arithmetic: MKL's GEMMs in their strict mode, and a group of one with MKL on one thread (``ebgan_core.determinism``,
``stacked.stacked_matmul``), pointwise functions that round alike wherever an element sits (``ebgan_core.pointwise``),
the optimiser's fused kernels on whole vectors or member by member (``ebgan_core.optim``) and each member scored in
batches of its own. So a member trained alone equals itself in any group bit for bit, in float32 and float64
(``benchmarks/group_parity.py``; docs/settings.md, "A member alone and in a group"). A group resumed from a saved state
ends exactly as one never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

import numpy as np
import torch

from ebgan_core.allocator import keep_freed_memory
from ebgan_core.cuda_graph import CapturePlan, step_function
from ebgan_core.determinism import one_mkl_thread, one_torch_thread, warn_unless_strict
from ebgan_core.hashed_config import HashedConfig
from ebgan_core.memory import default_memory_budget
from ebgan_core.rng import member_generators, real_batches

CURVE_POINTS = 50  # training curves are stored as this many bin means
GROUP_STATE_FORMAT = "ebgan-sweep group state"  # what a saved group state says it is
GROUP_STATE_VERSION = 3  # 1: the per-study layouts before the shared runner; 2: without sample grids along training
# (neither resumable)

Progress = Callable[[int, int], None]
Scores = dict[str, object]


class RunOptions(TypedDict, total=False):
    """How a group runs (``run_group``'s keyword arguments), the same for every study's trainer."""

    device: torch.device | str
    dtype: torch.dtype
    progress: Progress | None
    keep_state: bool
    memory_budget: int | None
    checkpointing: Checkpointing | None
    score_steps: Sequence[int]
    interim_samples: int | None
    cuda_graph: bool


@dataclass
class MemberResult:
    """What one member of a group produced (any study)."""

    config: HashedConfig
    status: str  # "completed" or "diverged"
    steps: int  # updates made (for a diverged member: up to the step that diverged)
    scores: Scores | None  # Table 1: I' and the others; Table 2: the test error. None for a diverged member
    curves: dict[str, list[float]]  # bin means of each training curve of the study
    sample_grid: np.ndarray | None  # uint8 [64, H, W] from fixed noise; None if diverged or the study draws none
    seconds: float  # the group's wall time divided by its size
    group_seconds: float
    group_size: int
    diverged_at_step: int | None = None
    resumed_from_step: int | None = None  # the step its training resumed at from a checkpoint; None: uninterrupted
    interim_scores: dict[int, Scores] = field(default_factory=dict)  # step -> scores, before the end
    interim_sample_grids: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # step -> uint8 grid there
    state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # weights, B=1 slices


class GroupModel(ABC):
    """A study's part of a group: the stacked networks and optimisers of B members, one training step, the scores,
    the sample grids and the state (everything the next step depends on beyond what the runner keeps)."""

    study: ClassVar[str]  # the study's name, as stored with its results and saved states
    config_type: ClassVar[type[HashedConfig]]
    streams: ClassVar[tuple[str, ...]]  # the per-member random streams the model draws from
    member_bytes: ClassVar[Callable[[HashedConfig, torch.dtype], int]]  # peak bytes of one member (an upper
    # estimate, for splitting a group into waves that fit in memory)
    curve_names: tuple[str, ...]  # the training curves ``step`` returns, in order

    def __init_subclass__(cls, *, study: str, config_type: type[HashedConfig], streams: tuple[str, ...],
                          member_bytes: Callable[[HashedConfig, torch.dtype], int], **kwargs: Any) -> None:
        """A study's model declares its study, config type, random streams and memory estimate as class arguments."""
        super().__init_subclass__(**kwargs)
        cls.study, cls.config_type, cls.streams = study, config_type, streams
        cls.member_bytes = staticmethod(member_bytes)

    def __init__(self, configs: Sequence[HashedConfig], streams: list[dict[str, torch.Generator]],
                 device: torch.device, dtype: torch.dtype) -> None:
        """A study's model builds and initialises the members of ``configs`` from their ``streams``, given the
        study's inputs (its context) as keyword arguments, after this."""
        self.configs, self.first, self.streams, self.device, self.dtype = configs, configs[0], streams, device, dtype

    def member_values(self, values: Sequence[float]) -> torch.Tensor:
        """One value per member as a [B] tensor on the device, in the training dtype."""
        return torch.tensor(values, device=self.device, dtype=self.dtype)

    @abstractmethod
    def step(self, step: int | torch.Tensor, real: torch.Tensor, active: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update every member at step ``step`` (a number, or a 0-dim device tensor where ``capture_plan`` allows
        capture) on the real images ``real`` [B, real_per_step(), features]; members outside ``active`` ([B] bool) are
        left as they are. Returns which members of ``active`` stayed finite ([B] bool) and this step's curve values
        ([len(curve_names), B])."""

    @abstractmethod
    def scores(self, alive: list[int], step: int | None, samples: int | None = None) -> dict[int, Scores]:
        """Scores of the members ``alive``: at the end (``step`` None) or along the way (``step``), in which case the
        training state and streams must be left exactly as they were; ``samples``: how many generated samples an
        interim score draws (None: as many as the final one; a study that scores no samples ignores it)."""

    @abstractmethod
    def sample_grids(self) -> np.ndarray | None:
        """Every member's sample grid from fixed noise, uint8 [B, 64, H, W]; None for a study that draws none."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The networks', optimisers' and the study's own state, as CPU copies."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s output."""

    @abstractmethod
    def member_state(self, member: int) -> dict[str, dict[str, torch.Tensor]]:
        """Member ``member``'s weights, per network, as B=1 slices."""

    @classmethod
    def one_cpu_thread(cls, configs: Sequence[HashedConfig]) -> bool:
        """Whether members of ``configs`` train on one CPU thread, so that their numbers do not depend on the thread
        count (default: no; MKL's strict mode makes matmuls thread-independent, not convolutions)."""
        return False

    def real_per_step(self) -> int:
        """Real images ``step`` takes at each step (default: a batch; a model that updates its discriminator k times a
        step takes k batches at once)."""
        return self.first.batch_size

    def capture_plan(self) -> CapturePlan | None:
        """What replaying ``step`` from a captured CUDA graph needs (``ebgan_core.cuda_graph``); None (the default):
        this model's step is not captured."""
        return None


@dataclass
class Checkpointing:
    """Save a group's training state every ``every_s`` seconds of training, and optionally resume from one.

    ``save`` gets the state as plain tensors, numbers and strings (``ebgan_core.checkpoint.save_group_state``
    writes it; ``load_group_state`` reads it back for ``resume``). A resumed group ends exactly as an uninterrupted
    one would: weights, batch-norm statistics, optimiser state, every random stream and the data order are restored.
    """

    every_s: float
    save: Callable[[dict[str, Any]], None]
    resume: dict[str, Any] | None = None


def check_group(configs: Sequence[HashedConfig]) -> None:
    """All members must share a group key; (config hash, seed) must be unique within the group."""
    if not configs:
        raise ValueError("a stacked group needs at least one config")
    keys = {c.group_key() for c in configs}
    if len(keys) > 1:
        raise ValueError(f"configs of one group must share group_key(); got {len(keys)} different keys")
    names = member_keys(configs)
    if len(set(names)) != len(names):
        raise ValueError("a group holds the same (config, seed) twice")


def member_keys(configs: Sequence[HashedConfig]) -> list[str]:
    """``config_hash:seed`` of each member: what a saved group state says it belongs to."""
    return [f"{c.config_hash()}:{c.seed}" for c in configs]


def check_resumable(state: dict[str, Any], study: str, configs: Sequence[HashedConfig]) -> None:
    """Refuse a saved group state of another format, study or members."""
    if (state.get("format"), state.get("version")) != (GROUP_STATE_FORMAT, GROUP_STATE_VERSION):
        raise ValueError(f"the saved group state is not a {GROUP_STATE_FORMAT} of version {GROUP_STATE_VERSION}; "
                         "start afresh")
    if state.get("study") != study:
        raise ValueError(f"the saved group state is of study {state.get('study')!r}, not {study!r}; start afresh")
    if state["members"] != member_keys(configs):
        raise ValueError("the saved group state is for other members (configs or seeds differ); start afresh")


def scoring_steps(every: int, steps: int) -> range:
    """The steps a run of ``steps`` is scored at along the way when scored every ``every`` steps (0: none); the last
    step is scored anyway."""
    return range(every, steps, every) if every else range(0)


def split_into_waves(configs: Sequence[HashedConfig], budget_bytes: int,
                     member_bytes: Callable[[HashedConfig], int]) -> list[list[HashedConfig]]:
    """Consecutive waves of at most as many members as ``budget_bytes`` holds (at least one member each)."""
    per_member = max(member_bytes(c) for c in configs)
    size = max(1, min(len(configs), budget_bytes // per_member))
    return [list(configs[i : i + size]) for i in range(0, len(configs), size)]


def bin_means(series: torch.Tensor, points: int) -> list[list[float]]:
    """[steps, B] -> per member, ``points`` bin means (NaN where a member had diverged or the value is undefined)."""
    steps = series.shape[0]
    edges = np.linspace(0, steps, min(points, steps) + 1).round().astype(int)
    values = series.double().cpu().numpy()
    return [
        [float(values[a:b, m].mean()) for a, b in itertools.pairwise(edges)]
        for m in range(values.shape[1])
    ]


def run_group(
    model_type: type[GroupModel],
    configs: Sequence[HashedConfig],
    real: torch.Tensor,
    context: Mapping[str, Any],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Progress | None = None,
    keep_state: bool = False,
    memory_budget: int | None = None,
    checkpointing: Checkpointing | None = None,
    score_steps: Sequence[int] = (),
    interim_samples: int | None = None,
    cuda_graph: bool = True,
) -> list[MemberResult]:
    """Train the members ``configs`` of one study (``model_type``, built with ``context``) on the real images
    ``real`` [N, ...] and score them; one result per member, in order.

    ``progress(step, total)`` is called every step; ``keep_state`` returns each member's weights too. On CUDA, float32
    matmuls may use TF32; ``dtype=torch.float64`` is for numerical checks against references. Members that do not fit
    in ``memory_budget`` bytes at once (default: 80% of the memory available on the device) train in consecutive
    waves; a member's result does not depend on its wave. ``checkpointing`` saves the group's state now and then, and
    resumes from a saved one. Members are also scored after each of ``score_steps`` (below ``steps``;
    ``interim_scores``; on ``interim_samples`` samples, default the final score's), which leaves the rest of the
    result unchanged. Freed host memory stays in this process from now on (``ebgan_core.allocator``): steps reuse it
    instead of faulting it in again. On CUDA, ``cuda_graph`` replays the step from a captured graph after a few eager
    steps, where the model allows it (``ebgan_core.cuda_graph``).
    """
    check_group(configs)
    keep_freed_memory()
    if torch.device(device).type == "cpu":
        warn_unless_strict()
    steps = configs[0].steps
    bad_steps = [s for s in score_steps if not 0 < s < steps]
    if bad_steps:
        raise ValueError(f"score_steps must lie in 1..steps-1 ({steps - 1}), got {bad_steps[0]}")
    if interim_samples is not None and interim_samples < 2:
        raise ValueError(f"interim_samples must be >= 2, got {interim_samples}")
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    resume = checkpointing.resume if checkpointing else None
    if resume is not None:
        check_resumable(resume, model_type.study, configs)
        waves = [[configs[i] for i in wave] for wave in resume["waves"]]  # the split it was saved with
        results = [_result_from_state(model_type, r) for r in resume["finished"]]
    else:
        budget = default_memory_budget(device) if memory_budget is None else memory_budget
        waves = split_into_waves(configs, budget, lambda c: model_type.member_bytes(c, dtype))
        results = []
    real = real.reshape(real.shape[0], -1).to(device, dtype)
    for index in range(resume["wave"] if resume else 0, len(waves)):
        def save(run_state: dict[str, Any], wave: int = index, finished: list[MemberResult] = results) -> None:
            checkpointing.save({
                "format": GROUP_STATE_FORMAT, "version": GROUP_STATE_VERSION, "study": model_type.study,
                "members": member_keys(configs), "waves": _wave_indices(waves), "wave": wave,
                "finished": [_result_state(r) for r in finished], "run": run_state})

        def wave_progress(step: int, total: int, done: int = index) -> None:
            progress(done * total + step, len(waves) * total)

        wave = _Wave(model_type, waves[index], context, device, dtype, cuda_graph)
        if resume is not None and index == resume["wave"]:
            wave.load(resume["run"])
        # A group of one on a CPU runs MKL's GEMMs on one thread, as a larger group does for each member's products
        # (``ebgan_core.stacked.stacked_matmul``); a model that asks for it runs on one thread altogether.
        on_cpu = device.type == "cpu"
        alone = one_mkl_thread() if len(waves[index]) == 1 and on_cpu else contextlib.nullcontext()
        threads = one_torch_thread() if on_cpu and model_type.one_cpu_thread(waves[index]) else contextlib.nullcontext()
        with alone, threads:
            results.extend(wave.train(real, None if progress is None else wave_progress,
                                      (frozenset(score_steps), interim_samples),
                                      None if checkpointing is None else (checkpointing.every_s, save), keep_state))
    return results


def _wave_indices(waves: list[list[HashedConfig]]) -> list[list[int]]:
    starts = list(itertools.accumulate((len(w) for w in waves), initial=0))
    return [list(range(a, b)) for a, b in itertools.pairwise(starts)]


def _result_state(result: MemberResult) -> dict[str, Any]:
    """A finished member as plain values (its sample grid as a tensor), for a group checkpoint."""
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    grid = result.sample_grid
    return fields | {"config": result.config.to_dict(), "sample_grid": None if grid is None else torch.from_numpy(grid),
                     "interim_sample_grids": {step: torch.from_numpy(g) for step, g in
                                              result.interim_sample_grids.items()}}


def _result_from_state(model_type: type[GroupModel], state: dict[str, Any]) -> MemberResult:
    grid = state["sample_grid"]
    return MemberResult(**state | {"config": model_type.config_type.from_dict(state["config"]),
                                   "sample_grid": None if grid is None else grid.numpy(),
                                   "interim_sample_grids": {step: g.numpy() for step, g in
                                                            state["interim_sample_grids"].items()}})


class _Wave:
    """Members that train together: the study's model plus what the runner keeps for every study (the random
    streams, which members are alive, the curves, the step, the scores along the way)."""

    def __init__(self, model_type: type[GroupModel], configs: Sequence[HashedConfig], context: Mapping[str, Any],
                 device: torch.device, dtype: torch.dtype, cuda_graph: bool) -> None:
        self.configs, self.device = configs, device
        self.streams = [member_generators(c, model_type.streams, device) for c in configs]
        self.model = model = model_type(configs, self.streams, device, dtype, **context)
        self.step_function = step_function(model.step, model.capture_plan, device, cuda_graph)
        members = len(configs)
        self.active = torch.ones(members, dtype=torch.bool, device=device)
        self.diverged_at = torch.full((members,), -1, dtype=torch.long, device=device)
        self.curves = torch.full((len(model.curve_names), configs[0].steps, members), float("nan"), device=device,
                                 dtype=dtype)
        self.step_done = 0
        self.seconds_before = 0.0  # training time spent before a resume
        self.resumed_from_step: int | None = None
        self.interim: dict[int, dict[int, Scores]] = {}  # step -> member -> scores
        self.interim_grids: dict[int, torch.Tensor] = {}  # step -> every member's sample grid, uint8 [B, 64, H, W]

    def train(self, real: torch.Tensor, progress: Progress | None, interim: tuple[frozenset[int], int | None],
              checkpoint: tuple[float, Callable[[dict[str, Any]], None]] | None,
              keep_state: bool) -> list[MemberResult]:
        """Train to the last step, scoring at the steps ``interim[0]`` on ``interim[1]`` samples (saving the state every
        ``checkpoint[0]`` seconds through ``checkpoint[1]``), then score; ``real``: every real image [N, features] on
        the device."""
        score_steps, interim_samples = interim
        first = self.configs[0]
        started = time.perf_counter() - self.seconds_before
        last_saved = time.monotonic()
        batches = real_batches(real, self.model.real_per_step(), first.data_seed, skip=self.step_done)
        while self.step_done < first.steps:
            self._step(next(batches).expand(len(self.configs), -1, -1))
            if progress is not None:
                progress(self.step_done, first.steps)
            if self.step_done in score_steps:
                self.interim[self.step_done] = self.model.scores(self._alive(), self.step_done, interim_samples)
                grids = self.model.sample_grids()
                if grids is not None:
                    self.interim_grids[self.step_done] = torch.from_numpy(grids)
            if checkpoint is not None and time.monotonic() - last_saved >= checkpoint[0]:
                checkpoint[1](self.state(time.perf_counter() - started))
                last_saved = time.monotonic()
        return self._results(started, keep_state)

    def _step(self, real: torch.Tensor) -> None:
        step = self.step_done
        finite, values = self.step_function(step, real, self.active)
        self.diverged_at = torch.where(self.active & ~finite, step, self.diverged_at)
        self.active = finite
        self.curves[:, step] = values
        self.step_done += 1

    def _alive(self) -> list[int]:
        active = self.active.cpu()
        return [m for m in range(len(self.configs)) if active[m]]

    def state(self, seconds: float) -> dict[str, Any]:
        """Everything the next step depends on, as CPU copies; ``seconds``: training time so far."""
        return {
            "step": self.step_done, "seconds": seconds, "model": self.model.state_dict(),
            "streams": [{name: g.get_state() for name, g in member.items()} for member in self.streams],
            "active": self.active.cpu(), "diverged_at": self.diverged_at.cpu(),
            "curves": self.curves[:, : self.step_done].cpu().clone(), "interim": self.interim,
            "interim_grids": self.interim_grids,
        }

    @torch.no_grad()
    def load(self, state: dict[str, Any]) -> None:
        """Continue from ``state()``'s output."""
        self.model.load_state_dict(state["model"])
        for member, saved in zip(self.streams, state["streams"], strict=True):
            for name, generator in member.items():
                generator.set_state(saved[name])
        self.active = state["active"].to(self.device)
        self.diverged_at = state["diverged_at"].to(self.device)
        self.step_done = self.resumed_from_step = int(state["step"])
        self.curves[:, : self.step_done] = state["curves"].to(self.device, self.curves.dtype)
        self.seconds_before = float(state["seconds"])
        self.interim = dict(state["interim"])
        self.interim_grids = dict(state["interim_grids"])

    def _results(self, started: float, keep_state: bool) -> list[MemberResult]:
        """Every member's result: scores and sample grids of those alive; timings since ``started`` (a
        ``time.perf_counter()`` value) cover training and scoring."""
        alive = self._alive()
        grids = self.model.sample_grids()
        scores = self.model.scores(alive, None)
        binned = {name: bin_means(self.curves[i], CURVE_POINTS) for i, name in enumerate(self.model.curve_names)}
        elapsed = time.perf_counter() - started
        diverged_at = self.diverged_at.cpu()
        results = []
        for member, config in enumerate(self.configs):
            diverged = member not in alive
            results.append(MemberResult(
                config=config,
                status="diverged" if diverged else "completed",
                steps=int(diverged_at[member]) + 1 if diverged else config.steps,
                scores=scores.get(member),
                curves={name: values[member] for name, values in binned.items()},
                sample_grid=None if diverged or grids is None else grids[member],
                seconds=elapsed / len(self.configs),
                group_seconds=elapsed,
                group_size=len(self.configs),
                diverged_at_step=int(diverged_at[member]) if diverged else None,
                resumed_from_step=self.resumed_from_step,
                interim_scores={step: at_step[member] for step, at_step in sorted(self.interim.items())
                                if member in at_step},
                interim_sample_grids={step: grids[member].numpy() for step, grids in sorted(self.interim_grids.items())
                                      if member in self.interim[step]},
                state=self.model.member_state(member) if keep_state else {},
            ))
        return results
