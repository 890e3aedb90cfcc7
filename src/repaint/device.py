"""Choosing the device and generator a run uses."""

from __future__ import annotations

import hashlib
import secrets

import torch

from repaint.errors import RepaintError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; an explicit choice must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise RepaintError(f"--device: unknown device {name!r}; use one of {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RepaintError("--device cuda: no CUDA device is available; use --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise RepaintError("--device mps: Apple's MPS backend is not available; use --device cpu")
    return torch.device(name)


def new_seed() -> int:
    """A fresh seed for runs without one; it is reported so the run can be repeated."""
    return secrets.randbits(31)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one sample: SHA-256 of `seed/part/part...`, first 8 bytes, 63 bits."""
    text = "/".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1
