"""MKL in its reproducible mode: a member's matrix products must not round by the group they run in.

PyTorch's CPU build runs float32 and float64 GEMMs (``bmm``, ``baddbmm``) through MKL, whose kernels and split between
threads depend on a batched product's batch size and on the data's alignment unless its strict conditional-numerical-
reproducibility mode is on (``MKL_CBWR=AUTO,STRICT``); Adam's normalised update turns such last-bit differences into
visible ones within a few steps. In the strict mode MKL's batched GEMM computes each product the same way whatever
the batch size or thread count (measured: ``benchmarks/group_parity.py``; docs/settings.md, "A member alone and in a
group"). A batch of one, which PyTorch hands to MKL's single GEMM instead, computes the same numbers on one thread
(``one_mkl_thread``, which the group runner uses for a group of one) except where ``stacked.stacked_matmul`` says;
MKL's LAPACK routines, outside the strict mode, run on one thread too.

MKL reads its mode once, at its first call in the process. Importing ``ebgan_core`` asks for it in the environment
(``STRICT_GEMM_ENV``, respecting a mode the user set), before any training; a process whose MKL already ran in another
mode keeps that mode, and ``gemm_mode`` says so (the group runner warns). A training process started elsewhere (a Ray
worker) gets ``STRICT_GEMM_ENV`` in its environment as well. This module itself imports torch; ``ebgan_core``'s
import only sets the variable.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import torch

_CBWR_ALL, _CBWR_STRICT = -1, 0x10000  # mkl_service.h: every setting; the strict flag


@functools.cache
def _mkl_function(name: str) -> ctypes._CFuncPtr | None:
    """An MKL service function ``int name(int)`` as linked into this PyTorch build; None where it is not exported."""
    if not torch.backends.mkl.is_available():
        return None
    try:
        function = getattr(ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so")), name)
    except (OSError, AttributeError):  # another platform's build, or MKL linked under other names
        return None
    function.restype, function.argtypes = ctypes.c_int, [ctypes.c_int]
    return function


def gemm_mode() -> str:
    """``strict`` where MKL computes each product independently of threads and batch; ``no MKL`` where this build
    has none (its GEMMs are then another library's, not checked here); else MKL's mode, which is not strict."""
    getter = _mkl_function("mkl_serv_cbwr_get")
    if getter is None:
        return "no MKL" if not torch.backends.mkl.is_available() else "MKL (mode unknown)"
    mode = getter(_CBWR_ALL)
    return "strict" if mode & _CBWR_STRICT else f"MKL mode {mode:#x} (not strict)"


@functools.cache
def warn_unless_strict() -> None:
    """Warn once per process where MKL runs its GEMMs in a mode that is not strict."""
    mode = gemm_mode()
    if mode not in ("strict", "no MKL"):
        logging.getLogger(__name__).warning(
            "MKL's GEMMs are not in their strict reproducible mode (%s; MKL ran before ebgan_core was imported), so a "
            "member's result may depend on its group; set MKL_CBWR=AUTO,STRICT before Python starts", mode)


@contextlib.contextmanager
def one_mkl_thread() -> Iterator[None]:
    """MKL on one thread within it, in this thread only (a no-op without MKL): for a group of one member, whose
    products MKL's single GEMM would otherwise split between threads and round apart from the batched GEMM's, and
    for MKL's LAPACK routines, which the strict mode does not cover (``torch.linalg.eigh`` of a 128 x 128 matrix
    differed in its 13th digit between one thread and two)."""
    setter = _mkl_function("MKL_Set_Num_Threads_Local")  # the C entry point (the lower-case ones take pointers)
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch's CPU operators on one thread within it: for convolutions, whose CPU kernels split their sums between
    threads by the thread count (a member trained with one thread and with two ended apart after 6 steps), so that a
    convolutional member's numbers are the same whatever threads its worker has."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
