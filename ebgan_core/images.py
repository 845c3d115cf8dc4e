"""Images as the networks and the judge take them (resized squares), and sample grids as uint8 tiles and PNG
bytes."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def resized_square(images: torch.Tensor, side: int) -> torch.Tensor:
    """Square images [N, C, s, s] at ``side`` x ``side`` (bilinear; antialiased when smaller: a 64x64 image's 2x2
    blocks averaged); as they are at ``s``."""
    if images.shape[-1] == side:
        return images
    return F.interpolate(images, size=(side, side), mode="bilinear", antialias=side < images.shape[-1],
                         align_corners=False)


def to_uint8(images: torch.Tensor, side: int = 32) -> np.ndarray:
    """Images in [-1, 1] ([..., side * side] or [..., side, side]; colour ones [..., 3, side * side]) -> uint8
    [..., side, side]."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.reshape(*pixels.shape[: -1 if pixels.shape[-1] == side * side else -2], side, side).numpy()


def grid_png(tiles: np.ndarray, columns: int | None = None, pad: int = 2, scale: int = 2) -> bytes:
    """uint8 tiles [K, H, W] (grey) or [K, 3, H, W] (RGB) -> PNG bytes of a grid (``columns`` default: square),
    white gaps, upscaled."""
    if tiles.ndim == 4:
        tiles = tiles.transpose(0, 2, 3, 1)  # channels last, as PIL takes them
    count, height, width = tiles.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, *tiles.shape[3:]), 255,
                     dtype=np.uint8)
    for index in range(count):
        top, left = pad + (index // columns) * (height + pad), pad + (index % columns) * (width + pad)
        canvas[top : top + height, left : left + width] = tiles[index]
    image = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
