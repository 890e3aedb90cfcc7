"""What people look at: denoising animations, comparison grids and schedule plots.

GIFs need only Pillow. MP4 needs OpenCV (extra `video`) and plots need
matplotlib (extra `plot`); without them those outputs are skipped or
refused with a message saying which extra to install.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from repaint.errors import RepaintError
from repaint.io import atomic_output
from repaint.schedule import JumpSchedule, Schedule
from repaint.version import install_hint

MIN_FRAME_HEIGHT = 256  # small models' frames are enlarged (nearest) to stay visible


def _enlarge(frame: np.ndarray) -> np.ndarray:
    factor = max(1, -(-MIN_FRAME_HEIGHT // frame.shape[0]))
    return frame.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else frame


def _caption(frame: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The frame under a white strip naming each of its equal-width panels."""
    if not labels:
        return frame
    width = frame.shape[1]
    strip = Image.new("RGB", (width, 16), "white")
    draw = ImageDraw.Draw(strip)
    for number, label in enumerate(labels):
        draw.text((number * width // len(labels) + 4, 2), label, fill="black")
    return np.concatenate([np.asarray(strip), frame])


def save_animation(
    frames: list[np.ndarray], path: Path, fps: int = 12, labels: Sequence[str] = ()
) -> list[Path]:
    """Write `path` (.gif) from uint8 (H, W, 3) frames, plus an .mp4 beside it when
    OpenCV is installed; the last frame is held for a second. `labels` caption the frame's
    side-by-side panels (e.g. x_t | predicted x0). Returns the written paths."""
    if not frames:
        raise RepaintError(f"{path}: no frames were recorded")
    enlarged = [_caption(_enlarge(frame), labels) for frame in frames]
    enlarged += [enlarged[-1]] * fps
    images = [Image.fromarray(frame) for frame in enlarged]
    with atomic_output(path) as handle:
        images[0].save(
            handle,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )
    written = [path]
    try:
        import cv2
    except ImportError:
        return written
    mp4 = path.with_suffix(".mp4")
    temporary = mp4.with_name(f".{mp4.stem}.part.mp4")
    height, width = enlarged[0].shape[:2]
    writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    try:
        for frame in enlarged:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
    finally:
        writer.release()
    if temporary.is_file() and temporary.stat().st_size > 0:
        temporary.replace(mp4)
        written.append(mp4)
    else:
        temporary.unlink(missing_ok=True)
    return written


def comparison_grid(images: list[Image.Image], labels: list[str]) -> Image.Image:
    """Images side by side at a common height, each captioned; small images are enlarged."""
    height = max(MIN_FRAME_HEIGHT, max(image.height for image in images))
    scaled = [
        image.convert("RGB").resize(
            (round(image.width * height / image.height), height),
            Image.NEAREST if image.height < height else Image.BICUBIC,
        )
        for image in images
    ]
    caption, gap = 18, 4
    width = sum(image.width for image in scaled) + gap * (len(scaled) - 1)
    grid = Image.new("RGB", (width, height + caption), "white")
    draw = ImageDraw.Draw(grid)
    left = 0
    for image, label in zip(scaled, labels, strict=True):
        grid.paste(image, (left, caption))
        draw.text((left + 4, 3), label, fill="black")
        left += image.width + gap
    return grid


def plot_schedule(schedule: Schedule, path: Path) -> None:
    """The time list against the transition number, as the reference's visualiser draws it."""
    try:  # the Figure API draws without pyplot, so no global backend is switched
        from matplotlib.figure import Figure
    except ImportError:
        raise RepaintError(f"--plot needs matplotlib: {install_hint('plot')}") from None
    times = schedule.times()
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots()
    axes.plot(times, linewidth=1)
    axes.set_xlabel("transition")
    axes.set_ylabel("diffusion time t")
    if isinstance(schedule, JumpSchedule):
        changed = {
            key: value
            for key, value in schedule.params().items()
            if key in ("jump_length", "jump_n_sample") or value != getattr(JumpSchedule, key)
        }
        changed.pop("t_T", None)
        shape = ", ".join(f"{key}={value}" for key, value in changed.items())
    else:
        shape = f"time list from {schedule.where}"
    axes.set_title(
        f"t_T={schedule.t_T}, {shape}: {schedule.reverse_steps} model evaluations", fontsize=9
    )
    figure.tight_layout()
    suffix = path.suffix.lower().lstrip(".") or "png"
    with atomic_output(path) as handle:
        figure.savefig(handle, format=suffix)
