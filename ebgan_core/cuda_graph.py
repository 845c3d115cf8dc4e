"""A group's training step replayed from a captured CUDA graph: after a few eager steps, the whole step (forward,
backward and both optimisers' updates, several hundred kernels) is captured once and then launched as one graph per
step, with the step number, the real batch and the active members copied into its fixed inputs first. Where capture
fails (an operation that cannot be captured, memory), the wave goes on eagerly, with a warning.

A model opts in through ``GroupModel.capture_plan``: the random generators its step draws from (registered with the
graph, so that each replay draws the next numbers as an eager step would) and the Python counters its step advances
(which a replay, running no Python, leaves behind: advanced here instead). Everything else the step reads or changes
must live on the device at fixed addresses: weights, optimiser state and step counts, batch-norm statistics.
``EBGAN_CUDA_GRAPH=0`` in the environment turns capture off (every step eager), e.g. where a check found a captured
step differing from an eager one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

SWITCH = "EBGAN_CUDA_GRAPH"  # "0": never capture
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


def step_function(model_step: Step, plan: Callable[[], CapturePlan | None], device: torch.device,
                  enabled: bool) -> Step:
    """The model's own step, or on CUDA where ``enabled`` (and not switched off by ``EBGAN_CUDA_GRAPH=0``) a
    ``CapturedStep`` of it (eager where ``plan``, asked after the warm-up, gives None)."""
    if enabled and device.type == "cuda" and os.environ.get(SWITCH, "1") != "0":
        return CapturedStep(model_step, plan, device)
    return model_step
