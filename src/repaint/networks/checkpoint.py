"""Reading checkpoints safely and loading them strictly, with errors that say what differs.

A checkpoint only loads into a network built with the hyper-parameters it was trained with.
When they differ, :func:`load_state_dict_strict` raises :class:`CheckpointMismatchError` naming
the hyper-parameter that most likely differs, instead of a bare list of keys.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from repaint.errors import RepaintError
from repaint.networks.classifier import EncoderUNetModel

ModuleT = TypeVar("ModuleT", bound=nn.Module)
Shape = tuple[int, ...]
Hint = tuple[tuple[str, ...], str]
"""Suspected hyper-parameter names and the evidence for them."""

_SHOWN_KEYS = 8


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a flat name -> tensor checkpoint onto the CPU.

    ``.safetensors`` files need the ``safetensors`` package; anything else goes through
    ``torch.load(weights_only=True)``, so a checkpoint cannot run code while loading.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", str(path))
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(f"reading {path} needs the safetensors package") from exc
    try:
        if path.suffix == ".safetensors":
            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # unpickling, zip and safetensors errors: not a checkpoint
        reason = str(exc)
        if "Weights only load failed" in reason:  # torch's advice to unpickle it is not ours
            reason = "it holds objects that only an unsafe load would run"
        raise ValueError(f"{path} is not a readable checkpoint: {reason}") from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        found = type(state).__name__
        if isinstance(state, Mapping):
            found += f" with keys {_preview([str(key) for key in state])}"
        raise ValueError(
            f"{path} is not a state dict mapping names to tensors (it holds a {found})"
        )
    return dict(state)


def load_state_dict_strict(
    module: ModuleT, source: str | os.PathLike[str] | Mapping[str, Tensor]
) -> ModuleT:
    """Load a checkpoint file (or an in-memory state dict) into ``module``, all keys required.

    Raises :class:`CheckpointMismatchError` if keys or shapes differ, before touching
    ``module``. Tensors are cast to the module's dtypes (e.g. a low-precision torso).
    Returns ``module`` for chaining.
    """
    if isinstance(source, Mapping):
        state, origin = source, "the state dict"
    else:
        state, origin = read_state_dict(source), f"checkpoint {os.fspath(source)!r}"
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()}
    if expected != found:
        raise CheckpointMismatchError(origin, module, expected, found)
    module.load_state_dict(state, strict=True)
    return module


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the network built from the given hyper-parameters.

    ``suspects`` holds the hyper-parameter names that most likely differ (empty if the
    heuristics found none); ``missing``, ``unexpected`` and ``mismatched`` hold the details.
    Note that head counts (``num_heads``, ``num_head_channels``) change no tensor shape, so
    they can never be detected here.
    """

    def __init__(
        self, origin: str, module: nn.Module, expected: dict[str, Shape], found: dict[str, Shape]
    ) -> None:
        self.missing = [key for key in expected if key not in found]
        self.unexpected = [key for key in found if key not in expected]
        self.mismatched = {
            key: (found[key], shape)
            for key, shape in expected.items()
            if key in found and found[key] != shape
        }
        hints = _diagnose(expected, found, isinstance(module, EncoderUNetModel))
        self.suspects = tuple(dict.fromkeys(name for names, _ in hints for name in names))

        network = type(module).__name__
        lines = [f"{origin} does not fit this {network}; its hyper-parameters differ"]
        lines += [f"  likely: {' or '.join(names)}: {why}" for names, why in hints]
        if not hints:
            lines.append("  likely: unknown; compare with the checkpoint's training config")
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {_preview(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): {_preview(self.unexpected)}")
        if self.mismatched:
            shapes = [f"{key} {c} vs {m}" for key, (c, m) in self.mismatched.items()]
            lines.append(
                f"  shape mismatches, checkpoint vs model ({len(shapes)}): {_preview(shapes)}"
            )
        super().__init__("\n".join(lines))


def _preview(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    return shown if len(items) <= _SHOWN_KEYS else f"{shown}, ... (+{len(items) - _SHOWN_KEYS})"


def _block_count(shapes: Mapping[str, Shape], prefix: str) -> int:
    indices = [int(m.group(1)) for key in shapes if (m := re.match(rf"{prefix}\.(\d+)\.", key))]
    return max(indices, default=-1) + 1


def _uses_scale_shift(shapes: Mapping[str, Shape]) -> bool | None:
    """Whether residual blocks' embedding projection is twice their width (FiLM scale+shift)."""
    for key, shape in shapes.items():
        if key.endswith(".emb_layers.1.weight"):
            conv = shapes.get(key.removesuffix("emb_layers.1.weight") + "out_layers.3.weight")
            if conv is not None:
                return shape[0] == 2 * conv[0]
    return None


def _has_resample_convs(shapes: Mapping[str, Shape]) -> bool:
    """Conv up/downsampling layers exist only when residual blocks do not resample."""
    return any(key.endswith((".op.weight", ".conv.weight")) for key in shapes)


def _diagnose(
    expected: Mapping[str, Shape], found: Mapping[str, Shape], is_classifier: bool
) -> list[Hint]:
    """Guess which hyper-parameters explain the differences between two sets of shapes."""
    prefix = "classifier_" if is_classifier else ""
    hints: list[Hint] = []

    def differs(key: str, dim: int) -> tuple[int, int] | None:
        if key in expected and key in found and found[key][dim] != expected[key][dim]:
            return found[key][dim], expected[key][dim]
        return None

    if any(key.startswith("input_blocks.") for key in found) and is_classifier == any(
        key.startswith("output_blocks.") for key in found
    ):
        if is_classifier:
            return [(("classifier_path",), "the checkpoint is a diffusion UNet, not a classifier")]
        return [(("model_path",), "the checkpoint is a classifier, not a diffusion UNet")]

    if ("label_emb.weight" in found) != ("label_emb.weight" in expected):
        ours, theirs = ("does not", "has") if "label_emb.weight" in found else ("does", "has no")
        why = f"the checkpoint {theirs} a class embedding (label_emb), the model {ours}"
        hints.append((("class_cond",), why))
    if pair := differs("input_blocks.0.0.weight", 0):
        name = "classifier_width" if is_classifier else "num_channels"
        why = f"the first conv has {pair[0]} channels in the checkpoint, {pair[1]} here"
        hints.append(((name,), why))
    if not is_classifier and (pair := differs("out.2.weight", 0)):
        why = f"{pair[0]} output channels in the checkpoint, {pair[1]} here (6 = learned sigma)"
        hints.append((("learn_sigma",), why))

    counts = [
        (_block_count(found, part), _block_count(expected, part))
        for part in ("input_blocks", "output_blocks")
    ]
    if any(ours != theirs for ours, theirs in counts):
        names = (
            ("classifier_depth", "image_size")
            if is_classifier
            else ("num_res_blocks", "channel_mult")
        )
        why = f"{counts[0][0]} input blocks in the checkpoint, {counts[0][1]} here"
        if not is_classifier:
            why += " (the default channel_mult follows image_size)"
        hints.append((names, why))
    else:
        attention = [
            sorted(key for key in shapes if key.endswith(".qkv.weight"))
            for shapes in (found, expected)
        ]
        if attention[0] != attention[1]:
            why = (
                f"{len(attention[0])} attention layers in the checkpoint, {len(attention[1])} here"
            )
            hints.append(((f"{prefix}attention_resolutions",), why))
        if _has_resample_convs(found) != _has_resample_convs(expected):
            kind = "residual blocks" if _has_resample_convs(expected) else "plain convs"
            hints.append(((f"{prefix}resblock_updown",), f"the checkpoint resamples with {kind}"))

    scale_shift = (_uses_scale_shift(found), _uses_scale_shift(expected))
    if None not in scale_shift and scale_shift[0] != scale_shift[1]:
        state = "uses" if scale_shift[0] else "does not use"
        hints.append(((f"{prefix}use_scale_shift_norm",), f"the checkpoint {state} scale-shift"))

    if is_classifier:
        heads = [{key for key in shapes if key.startswith("out.")} for shapes in (found, expected)]
        if heads[0] != heads[1]:
            hints.append((("classifier_pool",), "the pooling heads have different layers"))
        elif pair := differs("out.2.positional_embedding", 1):
            why = f"the pool attends over {pair[0]} tokens in the checkpoint, {pair[1]} here"
            hints.append((("image_size",), why))

    resized = [key for key in expected if key in found and found[key] != expected[key]]
    if not hints and any(key.startswith(("input_blocks.", "output_blocks.")) for key in resized):
        # Same layout and first width, so the later levels' multipliers differ.
        name = "image_size" if is_classifier else "channel_mult"
        hints.append(((name,), "block widths differ past the first level"))
    return hints


def load_checkpoint(module: nn.Module, path: Path, source: str = "checkpoint") -> None:
    """Strictly load `path` into `module`; every failure is a one-line RepaintError.

    `source` says where the path came from (e.g. "config key model_path", "--model").
    """
    try:
        load_state_dict_strict(module, path)
    except FileNotFoundError:
        raise RepaintError(f"{path}: checkpoint not found ({source})") from None
    except CheckpointMismatchError as error:
        details = [line.strip() for line in str(error).splitlines()[1:]]
        likely = next((line for line in details if line.startswith("likely")), "")
        raise RepaintError(
            f"{path}: checkpoint does not fit the architecture the config describes; "
            f"{likely}; fix the model keys of its config"
        ) from None
    except ValueError as error:
        reason = str(error).splitlines()[0]
        raise RepaintError(f"{path}: not a usable checkpoint ({reason})") from None
