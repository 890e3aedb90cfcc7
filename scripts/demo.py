"""`make demo`: a short, offline, end-to-end RePaint run through `repaint run`.

Until the embedded `digits` model ships, the network has random weights: the run exercises
the whole pipeline (config, checkpoint, schedule, sampler, outputs) but the filled area is
not meaningful yet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from repaint.networks import unet_from_config
from repaint.reference import run_config

OUT = Path("demo_output")
MODEL = {
    "image_size": 32,
    "num_channels": 32,
    "num_res_blocks": 1,
    "channel_mult": "1,2,2",
    "attention_resolutions": "16,8",
    "num_heads": 4,
    "learn_sigma": True,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
}


def test_card(size: int = 32) -> np.ndarray:
    """A colourful synthetic picture: stripes and a disc."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([x, y, 0.5 + 0.5 * np.sin(8 * x)], axis=-1)
    image[(x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.06] = (1.0, 0.8, 0.1)
    return (image * 255).astype(np.uint8)


def main() -> None:
    for sub in ("gts", "masks"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(test_card()).save(OUT / "gts" / "card.png")
    mask = np.full((32, 32, 3), 255, np.uint8)
    mask[8:24, 8:24] = 0  # the hole to fill
    Image.fromarray(mask).save(OUT / "masks" / "card.png")

    torch.manual_seed(0)
    torch.save(unet_from_config(MODEL).state_dict(), OUT / "model.pt")
    conf = {
        **MODEL,
        "name": "demo",
        "model_path": str(OUT / "model.pt"),
        "timestep_respacing": "50",
        "schedule_jump_params": {"t_T": 50, "jump_length": 5, "jump_n_sample": 3},
        "data": {
            "eval": {
                "demo": {
                    "gt_path": str(OUT / "gts"),
                    "mask_path": str(OUT / "masks"),
                    "paths": {
                        "srs": str(OUT / "inpainted"),
                        "lrs": str(OUT / "gt_masked"),
                        "gts": str(OUT / "gt"),
                        "gt_keep_masks": str(OUT / "gt_keep_mask"),
                    },
                }
            }
        },
    }
    (OUT / "demo.yml").write_text(yaml.safe_dump(conf))
    summary = run_config(OUT / "demo.yml", seed=0, device="cpu")

    panels = [OUT / sub / "card.png" for sub in ("gt", "gt_masked", "inpainted")]
    grid = np.concatenate([np.asarray(Image.open(p)) for p in panels], axis=1)
    Image.fromarray(grid).resize((grid.shape[1] * 8, grid.shape[0] * 8), Image.NEAREST).save(
        OUT / "comparison.png"
    )
    print(
        f"demo: {summary.model_evaluations} model evaluations in {summary.seconds:.1f} s "
        "(tiny random-weight model until the embedded digits model ships)"
    )
    print(f"demo: input | masked | inpainted -> {OUT / 'comparison.png'}")


if __name__ == "__main__":
    main()
