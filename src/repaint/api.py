"""The one-call Python API, shaped like diffusers' inpainting pipelines.

    generator = torch.Generator().manual_seed(0)
    result = repaint.inpaint(image=photo, mask_image=mask, generator=generator)
    result.images[0]

Keep an inpainter from `repaint.load_inpainter` to inpaint many images without reloading
the model; both return the same `InpaintResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repaint.choices import DEFAULT_MODEL
from repaint.inpainter import Inpainter, InpaintResult, Progress
from repaint.io import ImageSource
from repaint.loading import load_inpainter
from repaint.request import InpaintRequest

LOAD_OPTIONS = ("dtype", "compile", "channels_last")


def inpaint(
    image: ImageSource,
    mask_image: ImageSource,
    model: str | Path | Inpainter = DEFAULT_MODEL,
    *,
    request: InpaintRequest | None = None,
    generator: torch.Generator | None = None,
    device: str = "auto",
    model_config: str | Path | None = None,
    callback: Callable[[Progress], None] | None = None,
    **options: Any,
) -> InpaintResult:
    """Inpaint `image` where `mask_image` says, with a model name, path or loaded inpainter.

    `mask_image` is white = keep by default (the reference's masks); pass
    `mask_mode="fill"` for white = fill (IOPaint, Stable Diffusion). `options` are
    `InpaintRequest` fields: preset ("fast" by default), schedule, eta, num_samples, seed,
    grow, fit, mask_blur, prompt, class_label, dtype, batch_size, ... `generator` (a
    `torch.Generator`) gives the run seed as in diffusers; the seed used is in
    `result.request.seed`. Images are paths, PIL images, uint8 or float arrays, or tensors
    (floats in [0, 1], or [-1, 1] when any value is negative).
    """
    if isinstance(model, Inpainter):
        inpainter = model
    else:
        loading = {key: options.pop(key) for key in LOAD_OPTIONS if key in options}
        if request is not None:
            loading = {key: getattr(request, key) for key in LOAD_OPTIONS} | loading
        inpainter = load_inpainter(model, device=device, model_config=model_config, **loading)
    return inpainter(image, mask_image, request, generator=generator, callback=callback, **options)
