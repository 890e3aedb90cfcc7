"""Training data as a stream: a folder of any size is listed, never held; images are decoded
(and cropped, resized, flipped) in `torch.utils.data` worker processes.

Every random choice of a step (which images, their levels, their noise, flips and crops)
comes from the run's one generator, drawn for the *global* batch in a fixed order by the
`Planner`, which is the loader's batch sampler: each process (`torchrun`) and micro-batch
(`--grad-accum`) takes its own slice of the same draws. So one process with batch 2B, two
with B, and B with two micro-batches see the same images, levels and noise; a resumed run
restores the generator and continues the same sequence; and the workers only decode, so
their number changes nothing. Without flips or random crops the draws are those of the
earlier in-memory trainer (images, then levels, then noise), so its runs are reproduced.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from repaint.datasets import load_digits
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import INPUT_EXTENSIONS, center_crop_resize, image_header, open_image, pil_to_rgb

Crop = tuple[float, float, float]  # share of the short side, horizontal and vertical place
Item = tuple[int, bool, Crop | None]  # what one image of a batch is: index, flip, crop
SHOWN = 3  # file names quoted in a warning or error
SUBSTITUTES = 64  # unreadable files in a row before a batch gives up


@dataclass(frozen=True)
class FileList:
    """Paths below `root` packed in one byte buffer: no Python object per file, so workers
    that inherit it do not copy it page by page as reference counts change."""

    root: str
    blob: np.ndarray  # uint8: the relative paths, UTF-8, back to back
    offsets: np.ndarray  # int64, one more than there are paths

    @classmethod
    def of(cls, root: Path, names: Sequence[str]) -> FileList:
        encoded = [name.encode() for name in names]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(name) for name in encoded])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(str(root), blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def name(self, index: int) -> str:
        return bytes(self.blob[self.offsets[index] : self.offsets[index + 1]]).decode()

    def path(self, index: int) -> Path:
        return Path(self.root) / self.name(index)

    def fingerprint(self) -> str:
        """Changes when a file is added, removed or renamed (a resume checks it)."""
        digest = hashlib.sha256(self.offsets.tobytes())
        digest.update(self.blob.tobytes())
        return digest.hexdigest()[:16]


def scan_folder(
    folder: str | Path,
    size: int,
    *,
    resize: bool = True,
    val_split: float = 0.0,
    what: str = "--data",
) -> tuple[FileList, FileList]:
    """The readable images below `folder` (training, held out), checked from their headers:
    other files and unreadable images are skipped with one warning each kind; no usable
    image, or one smaller than `size` without `resize`, is refused before training."""
    root = Path(folder)
    if not root.is_dir():
        raise RepaintError(f"{what} {root}: no such folder (or the built-in dataset: digits)")
    names, others, unreadable, small, sizes = [], [], [], [], set()
    for name in _walk(root):
        if Path(name).suffix.lower() not in INPUT_EXTENSIONS:
            others.append(name)
            continue
        try:
            width, height = image_header(root / name)
        except RepaintError as error:
            unreadable.append(str(error))
            continue
        if min(width, height) < size and not resize:
            small.append(f"{name} ({width}x{height})")
        sizes.add((width, height))
        names.append(name)
    if others:
        _warn(f"{what} {root}: {len(others)} file(s) that are not images skipped", others)
    if unreadable:
        _warn(f"{what} {root}: {len(unreadable)} unreadable image(s) skipped", unreadable)
    if not names:
        raise RepaintError(f"{what} {root}: no readable images to train on")
    if small:
        raise RepaintError(
            f"--no-resize: {len(small)} image(s) smaller than {size} px, e.g. "
            f"{', '.join(small[:SHOWN])}; drop --no-resize to resize them, or remove them"
        )
    if resize and sizes != {(size, size)}:
        warnings.warn(
            f"{root}: images of {len(sizes)} size(s) are cropped and resized to {size}x{size}",
            RepaintWarning,
            stacklevel=2,
        )
    held = [_held_out(name, val_split) for name in names]
    training = [name for name, out in zip(names, held, strict=True) if not out]
    held_out = [name for name, out in zip(names, held, strict=True) if out]
    if val_split and not held_out:
        raise RepaintError(
            f"--val-split {val_split}: holds out none of the {len(names)} images; raise it"
        )
    if not training:
        raise RepaintError(f"--val-split {val_split}: leaves no image of {root} to train on")
    return FileList.of(root, training), FileList.of(root, held_out)


def _walk(root: Path) -> list[str]:
    found = []
    for directory, subfolders, files in os.walk(root):
        subfolders.sort()
        base = Path(directory).relative_to(root)
        found.extend(str(base / name) for name in files)
    return sorted(found)


def _held_out(name: str, share: float) -> bool:
    """A fixed share of the files by a hash of their name: the same files stay held out as
    the folder grows."""
    if share <= 0:
        return False
    value = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return value < share * 2**32


def _warn(message: str, examples: list[str]) -> None:
    shown = "; ".join(examples[:SHOWN]) + ("; ..." if len(examples) > SHOWN else "")
    warnings.warn(f"{message}: {shown}", RepaintWarning, stacklevel=3)


def square(image: Image.Image, size: int, crop: Crop | None, resize: bool) -> np.ndarray:
    """The training view of one image, uint8 (size, size, C): the centre square (or `crop`),
    resized the reference's way unless `resize` is off (then cut at the model size)."""
    if resize and crop is None:
        return center_crop_resize(image, size)
    width, height = image.size
    share, across, down = crop if crop is not None else (1.0, 0.5, 0.5)
    side = max(1, round(share * min(width, height))) if resize else size
    left, top = round(across * (width - side)), round(down * (height - side))
    cut = image.crop((left, top, left + side, top + side))
    return center_crop_resize(cut, size) if resize else np.asarray(cut)


class TrainingSet(Dataset):
    """Images by index from a file list (decoded when asked) or an array (the built-in
    digits). An item that fails to decode is replaced by the next readable one, so a batch
    stays full and the substitute is the same on a rerun; the failure travels with the
    batch to be reported once."""

    def __init__(self, source: FileList | np.ndarray, size: int, resize: bool = True) -> None:
        self.source, self.size, self.resize = source, size, resize

    def __len__(self) -> int:
        return len(self.source)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.source, np.ndarray)

    def __getitem__(self, item: Item) -> tuple[Tensor | None, tuple[str, ...]]:
        index, flip, crop = item
        failed: list[str] = []
        for attempt in range(SUBSTITUTES):
            try:
                pixels = self.load((index + attempt) % len(self), crop)
            except RepaintError as error:
                failed.append(str(error))
                continue
            if flip:
                pixels = pixels[:, ::-1]
            return torch.from_numpy(np.array(pixels)).permute(2, 0, 1), tuple(failed)
        return None, tuple(failed)

    def load(self, index: int, crop: Crop | None = None) -> np.ndarray:
        if isinstance(self.source, np.ndarray):
            pixels = self.source[index]
            if crop is None:
                return pixels
            return square(Image.fromarray(pixels), self.size, crop, self.resize)
        image = Image.fromarray(pil_to_rgb(open_image(self.source.path(index))))
        return square(image, self.size, crop, self.resize)


def collate(batch: list[tuple[Tensor | None, tuple[str, ...]]]) -> tuple[Tensor | None, list[str]]:
    failed = [message for _, messages in batch for message in messages]
    if any(images is None for images, _ in batch):
        return None, failed
    return torch.stack([images for images, _ in batch]), failed


@dataclass(frozen=True)
class Layout:
    """How a global batch is split: processes x micro-batches x images."""

    batch: int
    accum: int = 1
    world: int = 1
    rank: int = 0

    @property
    def global_batch(self) -> int:
        return self.batch * self.accum * self.world

    def slots(self, micro: int) -> slice:
        start = (self.rank * self.accum + micro) * self.batch
        return slice(start, start + self.batch)


class StepDraws(NamedTuple):
    """One step's levels and noise for this process, per micro-batch, and the generator's
    state after the step (what a checkpoint saved after it must hold)."""

    t: list[Tensor]
    noise: list[Tensor]
    state: Tensor


class Planner:
    """The loader's batch sampler: draws every step's randomness from `generator`, hands the
    loader this process's micro-batches of items and keeps the levels and noise, in step
    order, in `pending` for the training loop (the loader runs ahead by its prefetch)."""

    def __init__(
        self,
        generator: torch.Generator,
        layout: Layout,
        count: int,
        levels: int,
        shape: tuple[int, ...],
        *,
        flip: bool = False,
        crop_range: tuple[float, float] | None = None,
    ) -> None:
        self.generator, self.layout, self.count, self.levels = generator, layout, count, levels
        self.shape, self.flip, self.crop_range = shape, flip, crop_range
        self.pending: deque[StepDraws] = deque()

    def __iter__(self) -> Iterator[list[Item]]:
        while True:
            items, draws = self.draw()
            self.pending.append(draws)
            yield from items

    def draw(self) -> tuple[list[list[Item]], StepDraws]:
        size, generator = self.layout.global_batch, self.generator
        index = torch.randint(0, self.count, (size,), generator=generator)
        t = torch.randint(0, self.levels, (size,), generator=generator)
        noise = torch.randn((size, *self.shape), generator=generator)
        flips = torch.randint(0, 2, (size,), generator=generator) if self.flip else None
        crops = torch.rand((size, 3), generator=generator).tolist() if self.crop_range else None
        low, high = self.crop_range or (1.0, 1.0)
        items, levels, noises = [], [], []
        for micro in range(self.layout.accum):
            slots = self.layout.slots(micro)
            items.append(
                [
                    (
                        int(index[slot]),
                        bool(flips is not None and flips[slot]),
                        None
                        if crops is None
                        else (low + crops[slot][0] * (high - low), crops[slot][1], crops[slot][2]),
                    )
                    for slot in range(slots.start, slots.stop)
                ]
            )
            levels.append(t[slots])
            noises.append(noise[slots])
        return items, StepDraws(levels, noises, generator.get_state())


def batches(dataset: TrainingSet, planner: Planner, workers: int) -> Iterator:
    """(images uint8 (B, C, H, W) or None, failures) per micro-batch, decoded by `workers`
    processes ahead of the training loop (0: in this process)."""
    loader = DataLoader(
        dataset,
        batch_sampler=planner,
        num_workers=workers,
        collate_fn=collate,
        prefetch_factor=2 if workers else None,
    )
    return iter(loader)


def auto_workers(requested: int, world: int, in_memory: bool) -> int:
    """-1: one loader process per spare CPU core of this process's share, at most 8; none for
    data already in memory."""
    if in_memory:
        return 0
    if requested >= 0:
        return requested
    return max(0, min(8, (os.cpu_count() or 1) // world - 1))


@dataclass(frozen=True)
class Data:
    """What a run trains on and validates with."""

    training: TrainingSet
    description: str
    fingerprint: str
    held_out: np.ndarray | None  # uint8 (N, size, size, 3), or None without validation


def open_data(
    source: str,
    size: int,
    *,
    resize: bool = True,
    val_split: float = 0.0,
    val_data: str = "",
    val_images: int = 0,
) -> Data:
    """The training set of `source` (a folder or `digits`) and, with `val_images`, the first
    held-out images decoded (from `val_data`, or the `val_split` share of `source`; for
    `digits` its test split)."""
    if source == "digits":
        images = load_digits("train", size)[0]
        training = TrainingSet(images, size, resize)
        description, fingerprint, held = "digits (train split)", f"digits/{len(images)}", None
    else:
        files, held = scan_folder(source, size, resize=resize, val_split=val_split)
        training = TrainingSet(files, size, resize)
        description, fingerprint = f"{source}", files.fingerprint()
    held_out = None
    if val_images:
        if val_data == "digits" or (not val_data and source == "digits"):
            held_out = load_digits("test", size)[0][:val_images]
        else:
            if val_data:
                held, _ = scan_folder(val_data, size, what="--val-data")
            pick = TrainingSet(held, size)
            decoded = [pick[(i, False, None)][0] for i in range(min(val_images, len(held)))]
            held_out = np.stack([image.permute(1, 2, 0).numpy() for image in decoded])
    return Data(training, description, fingerprint, held_out)
