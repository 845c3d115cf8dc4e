"""Per-member optimiser over stacked parameters [B, ...]: Adam or SGD per member, a lr per member.

Each member is updated by PyTorch's fused optimiser kernel (the one behind ``torch.optim.Adam(fused=True)``
and ``torch.optim.SGD(fused=True)``) on its own slices ``param[b]``: one pass over parameter, gradient and
state, in place, with no temporaries. Optimiser state is allocated per member and only for the members
that use it (Adam moments for Adam members, a momentum buffer for SGD members with momentum).

Members outside the ``active`` mask (diverged ones) are skipped through the kernels' ``found_inf`` flag, a
device tensor, so masking needs no host sync. The step count (Adam's bias correction) is shared, so a
skipped member is meant to stay skipped, as a diverged member does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn


class StackedOptimizer:
    """Adam (torch's formula, no weight decay) or SGD (optional momentum) chosen per member."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        kinds: Sequence[str],
        lrs: Sequence[float],
        adam_betas: tuple[float, float],
        sgd_momentum: float,
        adam_eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("StackedOptimizer got no parameters")
        unknown = sorted(set(kinds) - {"adam", "sgd"})
        if unknown:
            raise ValueError(f"unknown optimiser {unknown[0]!r}; use adam or sgd")
        if len(lrs) != len(kinds) or any(p.shape[0] != len(kinds) for p in self.params):
            raise ValueError(f"StackedOptimizer needs one kind and one lr per member ({self.params[0].shape[0]})")
        self.kinds = list(kinds)
        self.lrs = [float(lr) for lr in lrs]
        self.beta1, self.beta2 = adam_betas
        self.eps = adam_eps
        self.momentum = sgd_momentum
        self.steps = 0
        with torch.no_grad():
            self.member_params = [list(slices) for slices in zip(*(p.unbind(0) for p in self.params), strict=True)]
        self.states = [self._new_state(k, slices) for k, slices in zip(self.kinds, self.member_params, strict=True)]
        # The fused Adam kernel reads the step count (for bias correction) from a device tensor.
        self.step_count = torch.zeros((), dtype=torch.float32, device=self.params[0].device)

    def _new_state(self, kind: str, slices: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        def zeros() -> list[torch.Tensor]:
            return [torch.zeros_like(s) for s in slices]

        if kind == "adam":
            return {"exp_avg": zeros(), "exp_avg_sq": zeros()}
        return {"momentum_buffer": zeros() if self.momentum else []}

    def state_dict(self) -> dict[str, object]:
        """The step count and every member's moments or momentum buffers (copies on the CPU)."""
        return {"steps": self.steps, "kinds": list(self.kinds),
                "states": [{name: [t.detach().cpu().clone() for t in tensors] for name, tensors in state.items()}
                           for state in self.states]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue from ``state_dict()``'s output, taken from an optimiser over the same members and shapes."""
        if state["kinds"] != self.kinds:
            raise ValueError(f"optimiser state is for members {state['kinds']}, not {self.kinds}")
        for mine, saved in zip(self.states, state["states"], strict=True):
            for name, tensors in mine.items():
                for tensor, value in zip(tensors, saved[name], strict=True):
                    tensor.copy_(value)
        self.steps = int(state["steps"])

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
        self.step_count.fill_(self.steps)
        skip = (~active).to(torch.float32)  # found_inf == 1.0 makes a fused kernel leave that member untouched
        member_grads = zip(*(p.grad.unbind(0) for p in self.params), strict=True)
        for member, grads in enumerate(member_grads):
            params, state = self.member_params[member], self.states[member]
            if self.kinds[member] == "adam":
                torch._fused_adam_(
                    params, list(grads), state["exp_avg"], state["exp_avg_sq"], [], [self.step_count] * len(params),
                    lr=self.lrs[member], beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps,
                    amsgrad=False, maximize=False, found_inf=skip[member],
                )
            else:
                torch._fused_sgd_(
                    params, list(grads), state["momentum_buffer"], weight_decay=0.0, momentum=self.momentum,
                    lr=self.lrs[member], dampening=0.0, nesterov=False, maximize=False,
                    is_first_step=self.steps == 1, found_inf=skip[member],
                )
        # The fused kernels write the parameters in place without bumping their version counters; bump them, so
        # autograd's saved-tensor check and the bfloat16 weight copies (StackedLinear.weight_low) see the update.
        for param in self.params:
            torch.autograd.graph.increment_version(param)
