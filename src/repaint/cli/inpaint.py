"""`repaint inpaint`: your own images, a file or a folder, with sidecars that redo them.

The flags become one `InpaintRequest` before any file is read, so a bad value fails at
once; a sidecar given with `--from-sidecar` becomes the same request it was written from.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from repaint.choices import DEFAULT_MODEL, DTYPES, FIT_MODES, MASK_MODES, SAMPLER_CHOICES
from repaint.cli.common import (
    add_device_argument,
    add_schedule_arguments,
    add_speed_arguments,
    required,
    schedule_from_args,
)
from repaint.errors import RepaintError
from repaint.presets import DEFAULT_PRESET, PRESETS, describe_presets
from repaint.request import InpaintRequest
from repaint.schedule import TimeList

if TYPE_CHECKING:
    from repaint.distributed import Context
    from repaint.jobs import Job


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "inpaint",
        help="inpaint your own images",
        description="Inpaint an image (or a folder of images) where its mask says. Masks are "
        "matched to images by file stem, or one mask file applies to all. The cost (model "
        "evaluations and an estimated time) is printed before sampling starts. Each output "
        "gets a JSON sidecar that reproduces it (--from-sidecar).",
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
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, choices=PRESETS, help=describe_presets()
    )
    add_schedule_arguments(parser, over_preset=True)
    parser.add_argument(
        "--eta",
        metavar="ddpm|ETA",
        help="the step between jumps: ddpm (ancestral, the paper's) or DDIM with this eta in "
        "[0, 1] (0 = deterministic); default: the preset's",
    )
    parser.add_argument(
        "--sampler",
        default="repaint",
        choices=SAMPLER_CHOICES,
        help="; ".join(f"{name}: {words}" for name, words in SAMPLER_CHOICES.items())
        + " (docs/samplers.md compares them)",
    )
    parser.add_argument("--num-samples", type=int, default=1, help="samples per image")
    branching = parser.add_argument_group(
        "branching: samples share one run down to a level, then go on each with its own noise"
    )
    branching.add_argument(
        "--branch-at",
        type=int,
        metavar="LEVEL",
        help="the level (t_T-1 ... 0) where the shared run stops and the branches start",
    )
    branching.add_argument(
        "--branches", type=int, dest="num_samples", metavar="K", help="same as --num-samples"
    )
    branching.add_argument(
        "--branch-jump-length", type=int, metavar="N", help="the branches' jump length"
    )
    branching.add_argument(
        "--branch-jump-n-sample", type=int, metavar="N", help="the branches' jump count"
    )
    branching.add_argument(
        "--branch-schedule-file",
        metavar="FILE.json",
        help="the branches' own time list (same t_T; they take it from where it first "
        "reaches --branch-at)",
    )
    parser.add_argument("--seed", type=int, help="run seed (default: a fresh one, recorded)")
    parser.add_argument(
        "--mask-mode",
        choices=MASK_MODES,
        default="keep",
        help="; ".join(f"{mode}: {words}" for mode, words in MASK_MODES.items())
        + " (default: keep)",
    )
    parser.add_argument(
        "--grow", type=int, default=0, metavar="N", help="grow the fill area by N px"
    )
    parser.add_argument(
        "--fit",
        choices=FIT_MODES,
        default="auto",
        help="how images of another size meet the model: region (default for larger images: "
        "inpaint around the holes), pad (default for smaller ones), resize, crop",
    )
    parser.add_argument(
        "--mask-blur",
        type=int,
        metavar="N",
        help="feather the pasted edge over N px (default: 0; 4 for Stable Diffusion models)",
    )
    text = parser.add_argument_group("Stable Diffusion models (--model FOLDER or hf:ORG/NAME)")
    text.add_argument("--prompt", help="what to paint into the hole")
    text.add_argument("--negative-prompt", default="", help="what to steer away from")
    text.add_argument(
        "--guidance-scale", type=float, help="classifier-free guidance scale (default: 7.5)"
    )
    parser.add_argument("--class", dest="class_label", help="ImageNet class id or name")
    parser.add_argument("--classifier-scale", type=float, help="classifier guidance scale")
    add_device_argument(parser)
    parser.add_argument(
        "--dtype",
        default="fp32",
        choices=DTYPES,
        help="network precision: fp16/bf16 convolutions with GroupNorm, softmax and the "
        "diffusion maths in fp32 (default: fp32)",
    )
    add_speed_arguments(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        help="windows x samples per network call (default: as many as fit a memory budget; "
        "the pixels are the same either way)",
    )
    parser.add_argument(
        "--save-progress", action="store_true", help="write a GIF (and MP4) of the denoising"
    )
    parser.add_argument(
        "--extend",
        metavar="LEFT,TOP,RIGHT,BOTTOM",
        type=_sides,
        help="grow the canvas by these pixels (one number: every side) and fill the new area "
        "(outpainting, textures), window by window at the model's size; the original pixels "
        "stay exact",
    )
    parser.add_argument("--grid", action="store_true", help="write input | masked | samples")
    parser.add_argument("--from-sidecar", metavar="FILE.json", help="redo a recorded output")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(handler=run)


def request_from_args(args: argparse.Namespace) -> InpaintRequest:
    """The flags as one checked request."""
    return InpaintRequest(
        preset=args.preset,
        schedule=schedule_from_args(args),
        eta=args.eta,
        sampler=args.sampler,
        num_samples=args.num_samples,
        seed=args.seed,
        mask_mode=args.mask_mode,
        grow=args.grow,
        fit=args.fit,
        mask_blur=args.mask_blur,
        extend=args.extend,
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        guidance_scale=args.guidance_scale,
        class_label=args.class_label,
        classifier_scale=args.classifier_scale,
        dtype=args.dtype,
        compile=args.compile,
        channels_last=args.channels_last,
        batch_size=args.batch_size,
        branch_at=args.branch_at,
        branch_schedule=_branch_schedule(args),
    )


def _sides(text: str) -> tuple[int, ...] | int:
    """`--extend 16` or `--extend 32,0,32,0`; the request checks the values."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LEFT,TOP,RIGHT,BOTTOM in pixels (or one number), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def _branch_schedule(args: argparse.Namespace) -> dict | None:
    if args.branch_schedule_file:
        if args.branch_jump_length is not None or args.branch_jump_n_sample is not None:
            raise RepaintError(
                "--branch-schedule-file: a time list replaces the branches' whole schedule; "
                "drop --branch-jump-length/--branch-jump-n-sample"
            )
        return TimeList.from_file(args.branch_schedule_file).params()
    given = {"jump_length": args.branch_jump_length, "jump_n_sample": args.branch_jump_n_sample}
    return {key: value for key, value in given.items() if value is not None} or None


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
