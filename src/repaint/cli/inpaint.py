"""`repaint inpaint`: your own images, a file or a folder, with sidecars that redo them.

The flags become one `InpaintRequest` before any file is read, so a bad value fails at
once; a sidecar given with `--from-sidecar` becomes the same request it was written from.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from repaint.choices import DEFAULT_MODEL
from repaint.cli.common import add_device_argument, required
from repaint.cli.request_flags import add_request_arguments, request_from_args
from repaint.errors import RepaintError
from repaint.request import InpaintRequest

if TYPE_CHECKING:
    from repaint.distributed import Context
    from repaint.jobs import Job


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "inpaint",
        help="inpaint your own images",
        description="Inpaint an image (or a folder of images) where its mask says. Masks are "
        "matched to images by file stem, or one mask file applies to all; a folder's images "
        "share batches. The cost (model evaluations and an estimated time) is printed before "
        "sampling starts. Each output gets a JSON sidecar that reproduces it (--from-sidecar).",
    )
    needed = required(parser)
    needed.add_argument("image", nargs="?", help="an image file or a folder of images (required)")
    needed.add_argument(
        "--mask", help="a mask file or a folder of masks (required, unless --extend)"
    )
    needed.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (required, also with --from-sidecar)"
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a name from `repaint models`, a checkpoint path, a diffusers folder or "
        f"hf:ORG/NAME (default: {DEFAULT_MODEL}, 32 px digits; for photos see `repaint models`)",
    )
    parser.add_argument(
        "--model-config", metavar="CONF.yml", help="reference-format config of a checkpoint path"
    )
    add_request_arguments(parser)
    add_device_argument(parser)
    parser.add_argument(
        "--save-progress", action="store_true", help="write a GIF (and MP4) of the denoising"
    )
    parser.add_argument("--grid", action="store_true", help="write input | masked | samples")
    parser.add_argument("--from-sidecar", metavar="FILE.json", help="redo a recorded output")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.from_sidecar:  # refuse bad flags before torch is even imported
        if not args.image or (not args.mask and args.extend is None):
            raise RepaintError(
                "inpaint needs IMAGE and --mask (or --extend, or --from-sidecar FILE.json)"
            )
        request_from_args(args)

    from repaint.distributed import Context
    from repaint.io import check_output_folder
    from repaint.jobs import Job, check_inputs, pair_inputs
    from repaint.sidecar import read_sidecar

    if args.from_sidecar:
        sidecar = read_sidecar(args.from_sidecar)
        jobs = [Job(sidecar.name, sidecar.image, sidecar.mask)]
        request, only_sample = sidecar.request, sidecar.sample
        model = (sidecar.model["model"], sidecar.model.get("model_config"))
        device, expected_sha = sidecar.device or args.device, sidecar.model.get("sha256")
    else:
        request, only_sample = request_from_args(args), None
        jobs = pair_inputs(args.image, args.mask)
        model, device, expected_sha = (args.model, args.model_config), args.device, None
    if args.out is None:
        raise RepaintError("inpaint needs --out DIR, the folder for the results")
    check_output_folder(args.out)
    keep_going = len(jobs) > 1  # a folder: record failures and go on; one image: fail now
    if not keep_going:
        check_inputs(jobs, request.mask_mode, request.extend)
    context = Context.from_env()
    try:
        return _share(args, context, jobs, request, model, device, expected_sha, only_sample)
    finally:
        context.close()


def _share(
    args: argparse.Namespace,
    context: Context,
    jobs: list[Job],
    request: InpaintRequest,
    model: tuple[str, str | None],
    device: str,
    expected_sha: str | None,
    only_sample: int | None,
) -> int:
    """This process's share of `repaint inpaint` (all of it without torchrun)."""
    from repaint.device import new_seed
    from repaint.jobs import FAILURES, run_jobs
    from repaint.loading import load_inpainter
    from repaint.sidecar import model_source

    total, keep_going = len(jobs), len(jobs) > 1
    seed = context.broadcast(request.seed if request.seed is not None else new_seed())
    request = request.with_seed(seed)
    jobs = context.share(jobs)
    inpainter = load_inpainter(
        model[0],
        device=context.device(device),
        dtype=request.dtype,
        model_config=model[1],
        compile=request.compile,
        channels_last=request.channels_last,
    )
    inpainter.check(request)
    if expected_sha not in (None, inpainter.sha256):
        warnings.warn(
            f"{args.from_sidecar}: the model file changed since (SHA-256 differs)", stacklevel=1
        )
    summary = run_jobs(
        inpainter,
        jobs,
        request,
        args.out,
        model_source=model_source(inpainter, *model),
        save_progress=args.save_progress,
        grid=args.grid,
        progress=False if args.no_progress or not context.is_main else None,
        only_sample=only_sample,
        keep_going=keep_going,
    )
    shares = context.gather(summary.counts())
    if not context.is_main:
        return 2 if sum(share["failed"] for share in shares) else 0
    done, skipped, failed = (
        sum(share[key] for share in shares) for key in ("done", "skipped", "failed")
    )
    seconds = max(share["seconds"] for share in shares)
    evaluations = sum(share["model_evaluations"] for share in shares)
    rate = evaluations / seconds if seconds else 0.0
    per_hour = done / seconds * 3600 if seconds else 0.0
    print(
        f"{done} done, {skipped} skipped (already complete), {failed} failed of {total} "
        f"image(s) in {seconds:.1f} s on {context.world} process(es): {per_hour:.0f} images/hour, "
        f"{evaluations:,} model evaluations ({rate:.1f}/s), seed {seed}; outputs in {args.out}"
    )
    if failed:
        raise RepaintError(f"{failed} of {total} image(s) failed; see {args.out / FAILURES}")
    return 0
