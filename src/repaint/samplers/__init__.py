"""Every training-free inpainting sampler, RePaint included, one module each
(`repaint.samplers.repaint`, `ddnm`, `dps`, `copaint`, `diffpir`, `pigdm`, `lanpaint`), each
a short function over the same denoiser and diffusion tables, and described once by a spec
(`registry`, `specs`): its function, options, cost, capabilities and model families.

This package's own namespace is the registry only, and imports no torch: import the sampler
functions from their modules.
"""

from repaint.samplers import specs as _specs  # noqa: F401 (registers the shipped samplers)
from repaint.samplers.registry import (
    LATENT,
    PIXEL,
    SAMPLERS,
    Option,
    SamplerSpec,
    call_sampler,
    get_spec,
    register,
    sampler_names,
    unregister,
)

__all__ = [
    "LATENT",
    "PIXEL",
    "SAMPLERS",
    "Option",
    "SamplerSpec",
    "call_sampler",
    "get_spec",
    "register",
    "sampler_names",
    "unregister",
]
