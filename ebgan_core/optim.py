"""Per-member optimiser over stacked parameters [B, ...]: Adam or SGD per member, a learning rate per member, and one
update per stacked tensor for all members of a group, whatever B. Three mechanisms, chosen per device by measurement
(``benchmarks/README.md``, "The optimiser"):

- ``compiled`` (the default on CUDA): each member's kind, learning rate and whether it still trains (not diverged) are
  [B] device tensors broadcast over the stacked tensors (``stacked_update``), compiled by ``torch.compile`` into one
  fused kernel per stacked tensor; no host sync, the same launches for 1 or 256 members.
- ``fused`` (the default on the CPU): PyTorch's fused Adam and SGD kernels (those behind ``torch.optim.Adam(fused=
  True)``) over the stacked tensors of each run of consecutive members that share a kind, a learning rate and beta1 (one
  run for a group of one kind and rate, whatever B), skipping diverged members (whose mask it reads on the host:
  free on a CPU). One pass over memory per element, the fastest update measured on the CPU. The kernels update a
  tensor's last (numel mod vector width) elements in a scalar loop that rounds apart from the vector body, so a
  stacked tensor whose member slices are not whole multiples of ``ALIGN_BYTES`` goes in member by member: each
  member's elements then take the path they take alone, and a member's update does not depend on its group.
- ``eager``: ``stacked_update`` as plain PyTorch ops (a reference; several passes over memory). Where compiling
  fails, ``compiled`` falls back to ``fused``.

The formulas are ``torch.optim.Adam``'s and ``torch.optim.SGD``'s (no weight decay; SGD with optional momentum, no
dampening). A member outside ``active`` is left bitwise as it was (parameters and state), whatever its gradient
holds, NaN included. The step count (Adam's bias correction) is shared by the group, so a member that stops is meant
to stay stopped, as a diverged member does. Optimiser state is kept for every member of a kind present in the group.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

KINDS = ("adam", "sgd")
ALIGN_BYTES = 64  # the fused kernels' unit of work (a cache line) and the widest CPU vector (AVX-512)
UPDATES = ("auto", "compiled", "fused", "eager")
Run = tuple[str, float, float, int, dict[str, list[torch.Tensor]]]  # kind, lr, beta1, its segment's index, views of its
# tensors


def stacked_update(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor | None,
                   exp_avg_sq: torch.Tensor | None, momentum_buffer: torch.Tensor | None, adam: torch.Tensor,
                   sgd: torch.Tensor | None, coefficients: dict[str, torch.Tensor], beta2: float, eps: float) -> None:
    """One step of every member of one stacked tensor, in place on [B, N] views (torch.optim's formulas).

    ``adam`` and ``sgd`` ([B, 1] bool; ``sgd`` None in a group without SGD members) say which members take which
    step now; a member in neither is left exactly as it is, whatever its gradient holds (NaN included). The Adam state
    is None in a group without Adam members, ``momentum_buffer`` None without SGD momentum. ``coefficients`` are
    [B, 1] per-member factors (``StackedOptimizer._coefficients``): ``adam_weight`` (1 - beta1, or 0),
    ``adam_decay`` (beta2, or 1), ``adam_step`` (lr / (1 - beta1^t), or 0), ``bias_correction2_sqrt`` (a scalar),
    ``sgd_decay`` (the momentum, 0 on the first step, or 1), ``sgd_lr`` (lr, or 0).
    """
    delta = None
    if exp_avg is not None and exp_avg_sq is not None:
        g = torch.where(adam, grad, 0.0)  # a member not taking an Adam step must not touch its state
        exp_avg.lerp_(g, coefficients["adam_weight"])
        exp_avg_sq.mul_(coefficients["adam_decay"]).addcmul_(g, g, value=1.0 - beta2)
        denom = (exp_avg_sq.sqrt() / coefficients["bias_correction2_sqrt"]).add_(eps)
        delta = exp_avg / denom * coefficients["adam_step"]
    if sgd is not None:
        g = torch.where(sgd, grad, 0.0)
        if momentum_buffer is not None:
            g = momentum_buffer.mul_(coefficients["sgd_decay"]).add_(g)
        sgd_delta = g * coefficients["sgd_lr"]
        delta = sgd_delta if delta is None else delta + sgd_delta  # a member takes one kind of step: the other is 0
    param.sub_(delta)


def update_all(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor] | None,
               exp_avg_sqs: list[torch.Tensor] | None, momentum_buffers: list[torch.Tensor] | None,
               adam: torch.Tensor, sgd: torch.Tensor | None, coefficients: dict[str, torch.Tensor], beta2: float,
               eps: float) -> None:
    """``stacked_update`` on every stacked tensor of a network ([B, N_i] views), in one call."""
    for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
        stacked_update(param, grad, None if exp_avgs is None else exp_avgs[index],
                       None if exp_avg_sqs is None else exp_avg_sqs[index],
                       None if momentum_buffers is None else momentum_buffers[index], adam, sgd, coefficients, beta2,
                       eps)


_compiled: Callable[..., None] | None = None


def _compiled_update() -> Callable[..., None]:
    """``update_all`` compiled once per process for every shape (dynamic shapes), on first use."""
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(update_all, dynamic=True, fullgraph=True)
    return _compiled


class StackedOptimizer:
    """Adam (torch's formula, no weight decay) or SGD (optional momentum) chosen per member, over stacked parameters.

    ``adam_betas`` is (beta1, beta2), beta1 one number or one per member. ``update`` is one of the mechanisms above,
    or ``auto``: ``compiled`` on CUDA, ``fused`` elsewhere (``compiled`` falls back to ``fused`` with a warning where
    compiling fails). ``lrs`` may be reassigned between steps (a schedule).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        kinds: Sequence[str],
        lrs: Sequence[float],
        adam_betas: tuple[float | Sequence[float], float],
        sgd_momentum: float,
        adam_eps: float = 1e-8,
        update: str = "auto",
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("StackedOptimizer got no parameters")
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown optimiser {unknown[0]!r}; use adam or sgd")
        if len(lrs) != len(kinds) or any(p.shape[0] != len(kinds) for p in self.params):
            raise ValueError(f"StackedOptimizer needs one kind and one lr per member ({self.params[0].shape[0]})")
        if update not in UPDATES:
            raise ValueError(f"unknown update {update!r}; use one of {', '.join(UPDATES)}")
        self.kinds = list(kinds)
        self.lrs = [float(lr) for lr in lrs]
        beta1, self.beta2 = adam_betas
        self.beta1s = [float(b) for b in beta1] if isinstance(beta1, Sequence) else [float(beta1)] * len(self.kinds)
        if len(self.beta1s) != len(self.kinds):
            raise ValueError(f"StackedOptimizer needs one beta1 per member ({len(self.kinds)}), got {len(self.beta1s)}")
        self.eps = adam_eps
        self.momentum = sgd_momentum
        device = self.params[0].device
        self.update = update if update != "auto" else "compiled" if device.type == "cuda" else "fused"
        self.steps = 0
        members = len(self.kinds)
        self.is_adam = torch.tensor([k == "adam" for k in self.kinds], device=device).view(members, 1)
        self.is_sgd = ~self.is_adam
        self.has_adam, self.has_sgd = "adam" in self.kinds, "sgd" in self.kinds
        self._lr_values: list[float] = []
        self._lr = torch.zeros(members, 1, device=device, dtype=torch.float64)
        self._beta1 = torch.tensor(self.beta1s, device=device, dtype=torch.float64).view(members, 1)
        # ``steps`` on the device as well, advanced by a kernel in each step: the fused Adam kernel and the per-member
        # factors read it, so a step replayed from a captured CUDA graph counts on (``ebgan_core.cuda_graph``).
        self._step_count = torch.zeros((), dtype=torch.float32, device=device)
        self._runs_cache: tuple[tuple, tuple[list[int], list[Run]]] | None = None  # the latest (active, lrs): ``_runs``
        # Which stacked tensors the fused kernels take whole: those whose member slices are whole vectors.
        self._whole = [p[0].numel() * p.element_size() % ALIGN_BYTES == 0 for p in self.params]

        def zeros() -> list[torch.Tensor]:
            return [torch.zeros_like(p) for p in self.params]

        self.state: dict[str, list[torch.Tensor]] = {}
        if self.has_adam:
            self.state["exp_avg"], self.state["exp_avg_sq"] = zeros(), zeros()
        if self.has_sgd and self.momentum:
            self.state["momentum_buffer"] = zeros()

    def state_dict(self) -> dict[str, Any]:
        """The step count, the members' kinds and the stacked state tensors (CPU copies)."""
        return {"layout": "stacked", "steps": self.steps, "kinds": list(self.kinds),
                "state": {name: [t.detach().cpu().clone() for t in tensors] for name, tensors in self.state.items()}}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s output, or from the per-member layout saved before stacked updates."""
        if state["kinds"] != self.kinds:
            raise ValueError(f"optimiser state is for members {state['kinds']}, not {self.kinds}")
        if state.get("layout") == "stacked":
            saved = state["state"]
            for name, tensors in self.state.items():
                for tensor, value in zip(tensors, saved[name], strict=True):
                    tensor.copy_(value)
        else:  # one dict of per-parameter slices per member, only for the states its kind uses
            for member, saved in enumerate(state["states"]):
                for name, values in saved.items():
                    for tensor, value in zip(self.state[name] if values else [], values, strict=True):
                        tensor[member].copy_(value)
        self.steps = int(state["steps"])
        self._step_count.fill_(self.steps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """Update every member in ``active`` ([B] bool) from the current gradients of all parameters."""
        missing = [i for i, p in enumerate(self.params) if p.grad is None]
        if missing:
            raise RuntimeError(f"StackedOptimizer.step: parameter {missing[0]} has no gradient; call backward first")
        self.steps += 1
        self._step_count.add_(1)
        if self.update == "compiled":
            try:
                self._apply(_compiled_update(), active.view(-1, 1))
            except Exception as exc:  # no compiler toolchain here: PyTorch's fused kernels from now on
                logging.getLogger(__name__).warning("compiled optimiser update failed (%s); using the fused kernels",
                                                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.update = "fused"
        if self.update == "eager":
            self._apply(update_all, active.view(-1, 1))
        if self.update == "fused":
            self._fused_runs(active.tolist())
        # In-place updates through views do not bump the parameters' version counters; bump them, so autograd's
        # saved-tensor check and the bfloat16 weight copies (StackedLinear.weight_low) see the update.
        for param in self.params:
            torch.autograd.graph.increment_version(param)

    def _fused_runs(self, active: list[bool]) -> None:
        """PyTorch's fused kernels over each run of consecutive active members of one kind and learning rate."""
        lengths, runs = self._runs(active)
        # Each gradient cut into the runs (and the gaps of inactive members between them) by one split per tensor:
        # slicing each gradient once per run was a third of a laptop-width group's update time.
        segments = list(zip(*(p.grad.split_with_sizes(lengths) for p in self.params), strict=True))
        for kind, lr, beta1, segment, views in runs:
            grads = self._entries(segments[segment])
            if kind == "adam":
                torch._fused_adam_(views["params"], grads, views["exp_avg"], views["exp_avg_sq"], [],
                                   [self._step_count] * len(grads), lr=lr, beta1=beta1, beta2=self.beta2,
                                   weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
            else:
                torch._fused_sgd_(views["params"], grads, views.get("momentum_buffer", []), weight_decay=0.0,
                                  momentum=self.momentum, lr=lr, dampening=0.0, nesterov=False, maximize=False,
                                  is_first_step=self.steps == 1)

    def _runs(self, active: list[bool]) -> tuple[list[int], list[Run]]:
        """The members cut into segments (their lengths): each run of consecutive active members sharing kind,
        learning rate and beta1, and each stretch of inactive members between them; and per run (kind, lr, beta1, its
        segment's index, views of the parameters and state tensors there). Kept while ``active`` and the learning
        rates stay as they are (slicing every tensor anew each step was a quarter of a laptop-width group's update
        time)."""
        key = (tuple(active), tuple(self.lrs))
        if self._runs_cache is not None and self._runs_cache[0] == key:
            return self._runs_cache[1]
        lengths: list[int] = []
        runs: list[Run] = []
        start = 0
        segments = itertools.groupby(range(len(self.kinds)),  # None: inactive
                                     lambda m: (self.kinds[m], self.lrs[m], self.beta1s[m]) if active[m] else None)
        for run_key, members in segments:
            end = start + len(list(members))
            if run_key is not None:
                kind, lr, beta1 = run_key
                names = ("exp_avg", "exp_avg_sq") if kind == "adam" else ("momentum_buffer",) if self.momentum else ()
                views = {name: self._entries([t[start:end] for t in tensors])
                         for name, tensors in (("params", self.params), *((n, self.state[n]) for n in names))}
                runs.append((kind, lr, beta1, len(lengths), views))
            lengths.append(end - start)
            start = end
        self._runs_cache = (key, (lengths, runs))
        return lengths, runs

    def _entries(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The fused kernels' tensor list for one run's slices of every stacked tensor: a slice whole where its
        members are whole vectors, else each member's part on its own."""
        return [part for tensor, whole in zip(tensors, self._whole, strict=True)
                for part in ((tensor,) if whole else tensor.unbind(0))]

    def _coefficients(self, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Which members take an Adam and an SGD step now, and their [B, 1] factors (computed in float64, then cast
        to the parameters' dtype, as torch.optim's Python scalars are), from the step count on the device."""
        dtype, one = self.params[0].dtype, torch.ones_like(self._lr)
        adam, sgd = self.is_adam & active, self.is_sgd & active
        step = self._step_count.to(torch.float64)
        coefficients = {
            "adam_weight": torch.where(adam, 1.0 - self._beta1, 0.0 * one),
            "adam_decay": torch.where(adam, self.beta2, one),
            "adam_step": torch.where(adam, self._lr / (1.0 - torch.pow(self._beta1, step)), 0.0 * one),
            "bias_correction2_sqrt": torch.sqrt(1.0 - torch.pow(self.beta2, step)),
            "sgd_decay": torch.where(sgd, torch.where(step == 1, 0.0 * one, self.momentum * one), one),
            "sgd_lr": torch.where(sgd, self._lr, 0.0 * one),
        }
        return adam, sgd, {name: value.to(dtype) for name, value in coefficients.items()}

    def _apply(self, update: Callable[..., None], active: torch.Tensor) -> None:
        """``update`` (``update_all``, compiled or not) on every stacked tensor, with [B, 1] per-member factors."""
        if self._lr_values != self.lrs:  # a host-to-device copy only when the learning rates change
            self._lr.copy_(torch.tensor(self.lrs, dtype=torch.float64).view(-1, 1))
            self._lr_values = list(self.lrs)
        members = len(self.kinds)
        adam, sgd, coefficients = self._coefficients(active)

        def flat(tensors: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if tensors is None else [t.view(members, -1) for t in tensors]

        update([p.view(members, -1) for p in self.params], [p.grad.reshape(members, -1) for p in self.params],
               flat(self.state.get("exp_avg")), flat(self.state.get("exp_avg_sq")),
               flat(self.state.get("momentum_buffer")), adam, sgd if self.has_sgd else None, coefficients,
               self.beta2, self.eps)
