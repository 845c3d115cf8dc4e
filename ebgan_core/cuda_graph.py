"""A group's training step replayed from a captured CUDA graph: after a few eager steps, the whole step (forward,
backward and both optimisers' updates, several hundred kernels) is captured once and then launched as one graph per
step, with the step number, the real batch and the active members copied into its fixed inputs first. Where capture
fails (an operation that cannot be captured, memory), the wave goes on eagerly, with a warning.

A model opts in through ``GroupModel.capture_plan``: the random generators its step draws from (registered with the
graph, so that each replay draws the next numbers as an eager step would) and the Python counters its step advances
(which a replay, running no Python, leaves behind: advanced here instead). Everything else the step reads or changes
must live on the device at fixed addresses: weights, optimiser state and step counts, batch-norm statistics.
Capture is on only where it has proven itself: after ``benchmarks/gpu_check.py`` (``make gpu-check``) found captured
steps equal to eager ones on this GPU model with this PyTorch and CUDA, and recorded that (``VALIDATIONS``, one entry
per GPU model and versions). Until then every step is eager, and the first group says so in one line.
``EBGAN_CUDA_GRAPH=1`` in the environment turns capture on regardless, ``EBGAN_CUDA_GRAPH=0`` off regardless.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

SWITCH = "EBGAN_CUDA_GRAPH"  # "0": never capture; "1": capture without a recorded validation
VALIDATIONS = Path(os.environ.get("EBGAN_CACHE", "~/.cache/ebgan-sweep")).expanduser() / "cuda_graph_validated.json"
_said_unvalidated = False  # the one line saying capture waits for a validation, said once per process
WARMUP_STEPS = 3  # eager steps before capture, on the capture's stream (lazy initialisation, compilation)
Step = Callable[[int | torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class CapturePlan:
    """What replaying a model's step needs: the generators it draws from and the Python counters it advances by one
    each step, as (object, attribute name)."""

    generators: list[torch.Generator]
    counters: list[tuple[object, str]] = field(default_factory=list)


class CapturedStep:
    """``step(step, real, active)`` of a model, eager for ``WARMUP_STEPS`` steps, then replayed from a CUDA graph.

    ``step`` reaches the model as a 0-dim int64 device tensor once captured (its value at each replay); ``real`` and
    ``active`` are copied into fixed buffers; the outputs are copies, so the caller may keep them across steps.
    """

    def __init__(self, step: Step, plan: Callable[[], CapturePlan | None], device: torch.device) -> None:
        self.step, self.plan_now, self.device = step, plan, device
        self.stream = torch.cuda.Stream(device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failure: str | None = None
        self.eager_steps = 0

    def __call__(self, step: int, real: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None and self.failure is None and self.eager_steps >= WARMUP_STEPS:
            self._capture(real, active)
        if self.graph is None:
            self.eager_steps += 1
            return self._on_stream(lambda: self.step(step, real, active))
        self.static_step.fill_(step)
        self.static_real.copy_(real[0] if self.real_rows else real)
        self.static_active.copy_(active)
        self.graph.replay()
        for owner, name in self.plan.counters:
            setattr(owner, name, getattr(owner, name) + 1)
        return self.static_finite.clone(), self.static_values.clone()

    def _on_stream(self, work: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``work`` on the capture's stream, ordered after and before the current stream's work."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            outputs = work()
        current.wait_stream(self.stream)
        for output in outputs:
            output.record_stream(current)
        return outputs

    def _capture(self, real: torch.Tensor, active: torch.Tensor) -> None:
        """Capture one step on fixed inputs, leaving the training state as it was; on failure, note why."""
        plan = self.plan_now()  # asked now: after the warm-up steps, the model knows how its step runs
        if plan is None:
            self.failure = "the model's step cannot be captured"
            return
        self.plan = plan
        self.real_rows = real.dim() == 3 and real.stride(0) == 0  # one batch shared by every member (expanded)
        self.static_real = (real[0] if self.real_rows else real).clone()
        self.static_active = active.clone()
        self.static_step = torch.zeros((), dtype=torch.long, device=self.device)
        counters = [getattr(owner, name) for owner, name in plan.counters]
        graph = torch.cuda.CUDAGraph()
        try:
            for generator in plan.generators:
                graph.register_generator_state(generator)
            members_real = self.static_real.expand_as(real) if self.real_rows else self.static_real
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph, stream=self.stream):
                self.static_finite, self.static_values = self.step(self.static_step, members_real, self.static_active)
            self.graph = graph
        except Exception as exc:  # an operation that cannot be captured, memory, ...: train eagerly
            self.failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logging.getLogger(__name__).warning("capturing the training step in a CUDA graph failed (%s); training "
                                                "this wave eagerly", self.failure)
        finally:  # capture ran the step's Python once without running its kernels
            for (owner, name), value in zip(plan.counters, counters, strict=True):
                setattr(owner, name, value)


def validation_key(device: torch.device) -> dict[str, str | None]:
    """What a validation holds for: the GPU model, PyTorch and its CUDA."""
    return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda}


def is_validated(key: dict[str, str | None], path: Path = VALIDATIONS) -> bool:
    """Whether ``record_validation`` recorded ``key`` in ``path`` (an unreadable record counts as none)."""
    try:
        return key in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def record_validation(key: dict[str, str | None], path: Path = VALIDATIONS) -> None:
    """Record that captured steps equalled eager ones for ``key`` (``benchmarks/gpu_check.py`` calls this)."""
    recorded = json.loads(path.read_text()) if path.exists() else []
    if key not in recorded:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([*recorded, key], indent=1) + "\n")


def capture_wanted(switch: str | None, validated: bool) -> bool:
    """Capture by ``EBGAN_CUDA_GRAPH`` (``switch``: "0" never, "1" always), else where a validation is recorded."""
    if switch in ("0", "1"):
        return switch == "1"
    return validated


def step_function(model_step: Step, plan: Callable[[], CapturePlan | None], device: torch.device,
                  enabled: bool) -> Step:
    """The model's own step, or on CUDA where ``enabled`` and ``capture_wanted`` a ``CapturedStep`` of it (eager where
    ``plan``, asked after the warm-up, gives None)."""
    global _said_unvalidated
    if not (enabled and device.type == "cuda"):
        return model_step
    switch = os.environ.get(SWITCH)
    if capture_wanted(switch, is_validated(validation_key(device))):
        return CapturedStep(model_step, plan, device)
    if switch is None and not _said_unvalidated:
        _said_unvalidated = True
        logging.getLogger(__name__).warning(
            "training steps run eagerly: capturing them in a CUDA graph waits until `make gpu-check` has checked it "
            "against eager steps on this GPU and PyTorch (%s=1 turns it on now)", SWITCH)
    return model_step
