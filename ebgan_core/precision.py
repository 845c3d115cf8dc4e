"""Matmul precision of training: ``fp32``, or ``bf16`` GEMMs with everything else in float32.

``bf16`` rounds both operands of every linear layer's matmul (forward and backward) to bfloat16, accumulates
in float32 and rounds the product to bfloat16, as autocast and oneDNN/cuBLAS do. Master weights, gradients,
optimiser state, batch-norm statistics, activations between layers and losses stay float32. The bfloat16
copy of a weight is made once per optimiser update (tracked through the tensor's version counter), not at
every call.

Where the hardware has bfloat16 matmul units (CUDA with bf16 support; CPUs with AMX or AVX512-BF16) the
GEMMs run natively in bfloat16. Elsewhere, a bfloat16 GEMM would run in a scalar fallback (measured ~100x
slower than float32 on an AVX2-only CPU), so the same rounding is emulated: operands rounded to bfloat16
values held in float32, a float32 GEMM (products of bfloat16 values are exact in float32), the result
rounded to bfloat16. Emulated and native results differ only by the GEMM's summation order (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOW = torch.bfloat16


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA bf16, or a CPU with AMX / AVX512-BF16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


@dataclass(frozen=True)
class Bf16Gemm:
    """How bfloat16 GEMMs execute: natively (bfloat16 tensors) or emulated (bfloat16 values in float32)."""

    native: bool

    def operand(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` rounded to bfloat16: a bfloat16 tensor (native) or float32 holding bfloat16 values."""
        low = tensor.to(LOW)
        return low if self.native else low.to(tensor.dtype)

    @staticmethod
    def result(product: torch.Tensor) -> torch.Tensor:
        """A GEMM's product rounded to bfloat16, returned as float32."""
        return product.to(LOW).to(torch.float32)


def bf16_gemm_for(device: torch.device | str) -> Bf16Gemm:
    """Native bfloat16 GEMMs where ``device`` has the hardware for them, emulated ones elsewhere."""
    return Bf16Gemm(native=native_bf16(device))


class Bf16Linear(torch.autograd.Function):
    """y = round(x_low @ w_low) + b for stacked layers ([B, N, in] @ [B, in, out]), gradients alike in bfloat16.

    Backward: grad_x = round(g_low @ w_low^T), grad_w = round(x_low^T @ g_low) (both returned in float32, so the
    master weight's gradient is float32), grad_b = sum of g over the samples in float32.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, weight_low: torch.Tensor,
                gemm: Bf16Gemm) -> torch.Tensor:
        x_low = gemm.operand(x)
        ctx.save_for_backward(x_low, weight_low)
        ctx.gemm, ctx.has_bias = gemm, bias is not None
        y = gemm.result(torch.bmm(x_low, weight_low))
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x_low, weight_low = ctx.saved_tensors
        gemm: Bf16Gemm = ctx.gemm
        grad_low = gemm.operand(grad)
        grad_x = gemm.result(torch.bmm(grad_low, weight_low.transpose(1, 2))) if ctx.needs_input_grad[0] else None
        grad_w = gemm.result(torch.bmm(x_low.transpose(1, 2), grad_low)) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(dim=1, keepdim=True) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None
