"""RePaint: inpainting with denoising diffusion probabilistic models (Lugmayr et al., 2022)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("repaint")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

from repaint.diffusion import GaussianDiffusion
from repaint.errors import RepaintError
from repaint.pipeline import PRESETS, Inpainter, inpaint
from repaint.sampler import Step, classifier_guidance, repaint
from repaint.schedule import JumpSchedule

__all__ = [
    "PRESETS",
    "GaussianDiffusion",
    "Inpainter",
    "JumpSchedule",
    "RepaintError",
    "Step",
    "__version__",
    "classifier_guidance",
    "inpaint",
    "repaint",
]
