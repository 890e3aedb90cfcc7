"""Training data as a stream: folder listing, decoding in the loader, crops and flips, the
planner's split of one global batch, and memory that does not grow with the folder."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import repaint.training.data as data_module
from repaint.errors import RepaintError, RepaintWarning
from repaint.training.data import (
    FileList,
    Layout,
    Planner,
    TrainingSet,
    batches,
    open_data,
    scan_folder,
    square,
)


def make_folder(root, count, size=(20, 16)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:05d}.png")
    return root


def test_a_file_list_holds_no_object_per_file(tmp_path):
    names = [f"sub/{i}.png" for i in range(1000)]
    files = FileList.of(tmp_path, names)
    assert len(files) == 1000 and files.name(7) == "sub/7.png"
    assert files.path(999) == tmp_path / "sub" / "999.png"
    assert files.blob.dtype == np.uint8 and files.offsets.dtype == np.int64
    assert FileList.of(tmp_path, names[:-1]).fingerprint() != files.fingerprint()


def test_scanning_skips_others_and_unreadables_with_one_warning_each(tmp_path):
    folder = make_folder(tmp_path / "data", 3)
    (folder / "notes.txt").write_text("x")
    (folder / "readme.md").write_text("x")
    (folder / "bad.png").write_bytes(b"not a png")
    with pytest.warns(RepaintWarning) as records:
        training, held = scan_folder(folder, 16)
    messages = [str(record.message) for record in records]
    assert sum("not images" in m for m in messages) == 1 and "notes.txt" in " ".join(messages)
    assert sum("unreadable" in m and "bad.png" in m for m in messages) == 1
    assert len(training) == 3 and len(held) == 0


@pytest.mark.parametrize(
    ("setup", "options", "words"),
    [
        (lambda root: root.mkdir(), {}, "no readable images"),
        (lambda root: (root.mkdir(), (root / "a.png").write_bytes(b"xx")), {}, "no readable"),
        (lambda root: make_folder(root, 2, (12, 40)), {"resize": False}, "smaller than 16"),
        (lambda root: make_folder(root, 2), {"val_split": 0.01}, "holds out none"),
        (lambda root: None, {}, "no such folder"),
    ],
)
def test_unusable_folders_are_refused_before_training(tmp_path, setup, options, words):
    root = tmp_path / "data"
    setup(root)
    with warnings.catch_warnings(), pytest.raises(RepaintError, match=words):
        warnings.simplefilter("ignore", RepaintWarning)
        scan_folder(root, 16, **options)


def test_the_held_out_share_is_stable_as_the_folder_grows(tmp_path):
    folder = make_folder(tmp_path / "data", 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepaintWarning)
        training, held = scan_folder(folder, 16, val_split=0.2)
        make_folder(tmp_path / "data", 90)  # 30 more files
        _, held_later = scan_folder(folder, 16, val_split=0.2)
    first = {held.name(i) for i in range(len(held))}
    assert 3 <= len(first) <= 25 and not first & {training.name(i) for i in range(len(training))}
    assert first <= {held_later.name(i) for i in range(len(held_later))}


def test_crops_resizes_and_flips():
    pixels = np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3)
    image = Image.fromarray(pixels)
    assert square(image, 10, None, resize=True).shape == (10, 10, 3)
    exact = square(image, 10, (1.0, 0.0, 1.0), resize=False)  # left, bottom, native size
    assert np.array_equal(exact, pixels[20:30, 0:10])
    centre = square(image, 10, None, resize=False)
    assert np.array_equal(centre, pixels[10:20, 15:25])
    part = square(image, 10, (0.5, 1.0, 0.0), resize=True)  # a 15 px square at the top right
    assert np.array_equal(part, square(Image.fromarray(pixels[0:15, 25:40]), 10, None, True))
    dataset = TrainingSet(pixels[None, :10, :10], 10)
    flipped, _ = dataset[(0, True, None)]
    assert torch.equal(flipped, torch.from_numpy(pixels[:10, 9::-1].copy()).permute(2, 0, 1))


def test_an_unreadable_file_is_replaced_by_the_next_and_reported(tmp_path):
    folder = make_folder(tmp_path / "data", 3, (16, 16))
    files = FileList.of(folder, ["00000.png", "broken.png", "00002.png"])
    (folder / "broken.png").write_bytes((folder / "00001.png").read_bytes()[:70])
    images, failed = TrainingSet(files, 16)[(1, False, None)]
    again, _ = TrainingSet(files, 16)[(2, False, None)]
    assert torch.equal(images, again) and len(failed) == 1 and "broken.png" in failed[0]


def test_the_global_batch_is_split_the_same_way_however_it_is_run():
    """One process with batch 4, two with 2, and one with two micro-batches of 2 see the
    same images, levels and noise, and the generator ends in the same state."""

    def draw(layouts):
        out = []
        for layout in layouts:
            generator = torch.Generator().manual_seed(5)
            planner = Planner(
                generator, layout, 50, 1000, (3, 4, 4), flip=True, crop_range=(0.5, 1.0)
            )
            items, draws = planner.draw()
            out.append((items, draws))
        return out

    (single,) = draw([Layout(4)])
    ranks = draw([Layout(2, world=2, rank=0), Layout(2, world=2, rank=1)])
    micro = draw([Layout(2, accum=2)])[0]
    whole = single[0][0]
    assert ranks[0][0][0] + ranks[1][0][0] == whole == micro[0][0] + micro[0][1]
    assert torch.equal(torch.cat([ranks[0][1].noise[0], ranks[1][1].noise[0]]), single[1].noise[0])
    assert torch.equal(torch.cat(micro[1].t), single[1].t[0])
    assert torch.equal(ranks[1][1].state, single[1].state)
    assert all(0.5 <= crop[0] <= 1.0 for _, _, crop in whole)


def test_the_loader_never_holds_the_whole_set(tmp_path, monkeypatch):
    """Only the images of the batches asked for (and the loader's prefetch) are decoded,
    and what is sent to each worker is the file list, not pixels."""
    folder = make_folder(tmp_path / "data", 200, (16, 16))
    decoded = []
    real_open = data_module.open_image
    monkeypatch.setattr(
        data_module, "open_image", lambda path: decoded.append(path) or real_open(path)
    )
    data = open_data(str(folder), 16)
    assert len(pickle.dumps(data.training)) < 40 * 200  # paths only: ~12 bytes each here
    planner = Planner(torch.Generator().manual_seed(0), Layout(4), 200, 1000, (3, 16, 16))
    stream = batches(data.training, planner, workers=0)
    for _ in range(3):
        images, failed = next(stream)
        assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8 and not failed
    assert len(decoded) == 12 and len(planner.pending) == 3
    worker_stream = batches(
        data.training, Planner(torch.Generator(), Layout(4), 200, 1000, (3, 16, 16)), workers=1
    )
    images, _ = next(worker_stream)
    assert images.shape == (4, 3, 16, 16)
    del worker_stream
