"""`data.eval` handling of `repaint run`: pairing, offset, max_len, batches, centre crop."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from repaint.io import center_crop_resize
from repaint.reference import load_eval_items, run_config


def test_centre_crop_resize_matches_the_reference_recipe():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (150, 90, 3), dtype=np.uint8))
    out = center_crop_resize(image, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    # by hand: one box halving (90 >= 64), bicubic to short side 32, centre square
    halved = image.resize((45, 75), Image.BOX)
    resized = np.asarray(halved.resize((32, round(75 * 32 / 45)), Image.BICUBIC))
    top = (resized.shape[0] - 32) // 2
    np.testing.assert_array_equal(out, resized[top : top + 32])


def test_offset_max_len_and_batches(workdir, monkeypatch):
    for name in ("a", "b", "c"):
        shutil.copy(workdir / "gts" / "img.png", workdir / "gts" / f"{name}.png")
        shutil.copy(workdir / "masks" / "img.png", workdir / "masks" / f"{name}.png")
    conf_text = (workdir / "conf.yml").read_text()
    conf_text = conf_text.replace("batch_size: 1", "batch_size: 2").replace(
        "offset: 0", "offset: 1"
    )
    (workdir / "conf.yml").write_text(conf_text.replace("max_len: 1", "max_len: 3"))
    monkeypatch.chdir(workdir)
    summary = run_config("conf.yml", seed=3, device="cpu", progress=False)
    assert summary.images == 3
    written = sorted(p.name for p in (workdir / "log" / "inpainted").iterdir())
    assert written == ["b.png", "c.png", "img.png"]  # sorted a, b, c, img; offset 1 skips a
    entry = {"gt_path": "gts", "mask_path": "masks", "offset": 0, "max_len": None}
    assert [item.name for item in load_eval_items(entry, 32)] == ["a", "b", "c", "img"]
