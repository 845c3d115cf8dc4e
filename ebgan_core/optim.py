"""Per-member optimiser over stacked parameters [B, ...]: Adam or SGD per member, a lr per member.

The update is the one torch.optim.Adam / torch.optim.SGD would make for each member alone. Members
outside the ``active`` mask (diverged ones) are left untouched, without a host sync.
"""

from __future__ import annotations

import math
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
        device = self.params[0].device
        self.members = len(kinds)
        self.beta1, self.beta2 = adam_betas
        self.eps = adam_eps
        self.momentum = sgd_momentum
        self.uses_adam = "adam" in kinds
        self.uses_sgd = "sgd" in kinds
        self.is_adam = torch.tensor([k == "adam" for k in kinds], device=device)
        self.lr = torch.tensor(list(lrs), dtype=self.params[0].dtype, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params] if self.uses_adam else []
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params] if self.uses_adam else []
        self.momentum_buffers = [torch.zeros_like(p) for p in self.params] if self.uses_sgd and sgd_momentum else []
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _per_member(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(self.members, *([1] * (like.ndim - 1)))

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """Update every member in ``active`` ([B] bool) from the current gradients."""
        self.steps += 1
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2_sqrt = math.sqrt(1 - self.beta2**self.steps)
        for index, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            lr = self._per_member(self.lr, param)
            mask = self._per_member(active, param)
            updates = []
            if self.uses_adam:
                adam_mask = mask & self._per_member(self.is_adam, param)
                exp_avg = torch.lerp(self.exp_avg[index], grad, 1 - self.beta1)
                exp_avg_sq = self.exp_avg_sq[index] * self.beta2 + (1 - self.beta2) * grad * grad
                denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + self.eps
                updates.append(exp_avg / denom * (lr / bias_correction1))
                self.exp_avg[index] = torch.where(adam_mask, exp_avg, self.exp_avg[index])
                self.exp_avg_sq[index] = torch.where(adam_mask, exp_avg_sq, self.exp_avg_sq[index])
            if self.uses_sgd:
                direction = grad
                if self.momentum_buffers:
                    sgd_mask = mask & ~self._per_member(self.is_adam, param)
                    direction = self.momentum_buffers[index] * self.momentum + grad
                    self.momentum_buffers[index] = torch.where(sgd_mask, direction, self.momentum_buffers[index])
                updates.append(direction * lr)
            update = updates[0]
            if len(updates) == 2:
                update = torch.where(self._per_member(self.is_adam, param), updates[0], updates[1])
            param.sub_(torch.where(mask, update, torch.zeros_like(update)))
