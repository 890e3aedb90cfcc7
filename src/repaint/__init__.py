"""RePaint: inpainting with denoising diffusion probabilistic models (Lugmayr et al., 2022).

The public names load on first use, so `import repaint` (and `repaint --help`) stays light.

    import repaint
    generator = torch.Generator().manual_seed(0)
    result = repaint.inpaint(image=photo, mask_image=mask, generator=generator)
    result.images[0].save("filled.png")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from repaint.version import __version__

_EXPORTS = {
    "GaussianDiffusion": "repaint.diffusion",
    "InpaintRequest": "repaint.request",
    "InpaintResult": "repaint.inpainter",
    "Inpainter": "repaint.inpainter",
    "JumpSchedule": "repaint.schedule",
    "PRESETS": "repaint.presets",
    "RepaintError": "repaint.errors",
    "RepaintWarning": "repaint.errors",
    "Step": "repaint.samplers.common",
    "TimeList": "repaint.schedule",
    "classifier_guidance": "repaint.samplers.repaint",
    "create_prior": "repaint.prior",
    "example": "repaint.examples",
    "inpaint": "repaint.api",
    "load_inpainter": "repaint.loading",
    "repaint": "repaint.samplers.repaint",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'repaint' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
