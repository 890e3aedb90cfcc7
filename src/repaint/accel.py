"""Faster network evaluation that leaves the sampler untouched.

The sampler only sees a denoiser `(x_t, timesteps, labels) -> output`; `accelerate` wraps one
with the optional speed-ups, each checked against the plain path in the tests:

- `channels_last`: NHWC activations and weights, which cuDNN and oneDNN convolve faster;
- `compile`: `torch.compile` of the whole network call, which fuses GroupNorm, SiLU and the
  elementwise glue; on CUDA it also captures the step in CUDA graphs (`reduce-overhead`), so
  a step launches one graph instead of hundreds of kernels. The first call compiles (seconds
  for small networks, a few minutes for the 256 px UNet);
- `autocast`: fp16/bf16 autocast for networks without a precision scheme of their own
  (ours keep convolutions in the torso dtype and GroupNorm, softmax and the timestep
  embedding in fp32; see `UNetModel.set_torso_dtype`). The output is returned as float32,
  so the diffusion arithmetic stays in fp32 either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Denoiser = Callable[[Tensor, Tensor, Tensor | None], Tensor]


@dataclass(frozen=True)
class Acceleration:
    channels_last: bool = False
    compile: bool = False
    autocast: torch.dtype | None = None

    def describe(self) -> str:
        parts = [
            "channels_last" if self.channels_last else "",
            "torch.compile" if self.compile else "",
            f"autocast {str(self.autocast).removeprefix('torch.')}" if self.autocast else "",
        ]
        return ", ".join(part for part in parts if part) or "plain"


PLAIN = Acceleration()


def accelerate(
    denoise: Denoiser, network: nn.Module, options: Acceleration, device: torch.device
) -> Denoiser:
    """`denoise` (which calls `network`) with the chosen speed-ups applied."""
    if options == PLAIN:
        return denoise
    if options.channels_last:
        network.to(memory_format=torch.channels_last)
    step = denoise
    if options.compile:
        # CUDA graphs replay fixed buffers: the sampler calls with the same shapes every step.
        mode = "reduce-overhead" if device.type == "cuda" else None
        step = torch.compile(denoise, mode=mode, dynamic=False)

    def fast(x: Tensor, timesteps: Tensor, labels: Tensor | None) -> Tensor:
        if options.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if options.compile and device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # last step's outputs are consumed
        if options.autocast is not None:
            with torch.autocast(device.type, dtype=options.autocast):
                out = step(x, timesteps, labels)
        else:
            out = step(x, timesteps, labels)
        return out.float()

    return fast
