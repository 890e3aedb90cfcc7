"""The `repaint` command line. Problems the user can fix exit with code 2 and one line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repaint.version import __version__
from repaint.errors import RepaintError
from repaint.masks import MASK_KINDS
from repaint.schedule import NEVER, JumpSchedule

if TYPE_CHECKING:
    from repaint.distributed import Context
    from repaint.jobs import Job, RunOptions

EXIT_USER_ERROR = 2


def add_schedule_arguments(parser: argparse.ArgumentParser, *, over_preset: bool = False) -> None:
    """Flags named after the reference's `schedule_jump_params` keys. With `over_preset`,
    unset flags stay None so that a preset fills them."""
    title = "jump schedule (reference schedule_jump_params)"
    if over_preset:
        title += "; each flag given overrides the preset's value"
    group = parser.add_argument_group(title)
    defaults = {field.name: field.default for field in fields(JumpSchedule)}
    help_text = {
        "t_T": "number of denoising levels (the model is respaced to this many steps)",
        "n_sample": "repeat every single reverse step this many times",
        "jump_length": "levels to jump back up after each segment",
        "jump_n_sample": "times each segment is denoised in all (1 = no resampling)",
        "jump2_length": "nested jump length (level 2)",
        "jump2_n_sample": "nested jump count (level 2)",
        "jump3_length": "nested jump length (level 3)",
        "jump3_n_sample": "nested jump count (level 3)",
        "start_resampling": "resample only at levels t <= this (default: everywhere)",
    }
    for name, default in defaults.items():
        shown = "everywhere" if default == NEVER else default
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=int,
            default=None if over_preset else default,
            metavar="N",
            help=help_text[name] if over_preset else f"{help_text[name]} (default: {shown})",
        )


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (and CUDA graphs on GPU); the first step compiles",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="NHWC memory layout for the network"
    )


def acceleration_from_args(args: argparse.Namespace):
    from repaint.accel import Acceleration

    return Acceleration(channels_last=args.channels_last, compile=args.compile)


def schedule_from_args(args: argparse.Namespace) -> JumpSchedule:
    return JumpSchedule(**{field.name: getattr(args, field.name) for field in fields(JumpSchedule)})


def cmd_schedule(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    if args.plot:
        from repaint.outputs import plot_schedule

        plot_schedule(schedule, Path(args.plot))
        print(f"schedule plot written to {args.plot}", file=sys.stderr)
    if args.json:
        times = schedule.times()
        print(
            json.dumps(
                {
                    "times": times,
                    "reverse_steps": schedule.reverse_steps,
                    "forward_steps": schedule.forward_steps,
                }
            )
        )
    else:
        print(schedule.summary())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from repaint.reference import run_config

    summary = run_config(
        args.conf,
        seed=args.seed,
        device=args.device,
        acceleration=acceleration_from_args(args),
        per_image_seeds=args.per_image_seeds,
        progress=False if args.no_progress else None,
    )
    if not summary.main:
        return 0
    rate = summary.model_evaluations / summary.seconds if summary.seconds else float("inf")
    skipped = f", {summary.skipped} skipped (already done)" if summary.skipped else ""
    print(
        f"inpainted {summary.images} image(s){skipped} with seed {summary.seed} in "
        f"{summary.seconds:.1f} s on {summary.processes} process(es) ({rate:.1f} model "
        "evaluations/s); outputs in "
        + ", ".join(str(folder) for folder in summary.output_folders.values())
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repaint",
        description="RePaint: inpaint images with a pretrained diffusion model.",
    )
    parser.add_argument("--version", action="version", version=f"repaint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a reference-format YAML config end to end",
        description="Run a config in the reference RePaint format (model, diffusion, "
        "classifier, schedule_jump_params and data.eval keys) and write its output folders. "
        "Relative paths in the config resolve against the working directory.",
    )
    run.add_argument("--conf", required=True, metavar="CONF.yml", help="the config file")
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the one generator all randomness comes from (default: a fresh one, printed)",
    )
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    run.add_argument(
        "--per-image-seeds",
        action="store_true",
        help="each image its own generator from the seed and its name (always under torchrun): "
        "results independent of batching and sharding, finished images skipped on a rerun; "
        "the default is the reference's single generator",
    )
    add_speed_arguments(run)
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    run.set_defaults(handler=cmd_run)

    schedule = commands.add_parser(
        "schedule",
        help="print the jump schedule and its cost",
        description="Show RePaint's time schedule for the given parameters.",
    )
    add_schedule_arguments(schedule)
    schedule.add_argument(
        "--json",
        action="store_true",
        help='print {"times": [...], "reverse_steps": N, "forward_steps": M}',
    )
    schedule.add_argument("--plot", metavar="FILE.png", help="also plot t against the step")
    schedule.set_defaults(handler=cmd_schedule)

    add_inpaint_parser(commands)
    add_train_parser(commands)

    masks = commands.add_parser(
        "masks",
        help="generate the paper's mask kinds",
        description="Write keep-masks (255 = keep, 0 = fill) of the six kinds of the RePaint "
        "paper: thin (Narrow) and thick (Wide) LaMa masks, ev2li (alternating lines), nn2 "
        "(super-resolve 2x), ex64 (expand: keep the centre quarter), genhalf (keep the left "
        "half).",
    )
    masks.add_argument("--type", required=True, choices=MASK_KINDS, help="mask kind")
    masks.add_argument("--size", type=int, default=256, help="side in pixels (default: 256)")
    masks.add_argument("--count", type=int, default=1, help="how many (default: 1)")
    masks.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    masks.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    masks.set_defaults(handler=cmd_masks)

    models = commands.add_parser("models", help="list the known models")
    models.set_defaults(handler=cmd_models)

    download = commands.add_parser(
        "download",
        help="download a known model into the cache ($REPAINT_HOME)",
        description="Download a registered checkpoint (and its classifier) with resume and a "
        "SHA-256 check. The cache is $REPAINT_HOME, default ~/.cache/repaint.",
    )
    download.add_argument("name", help="a name from `repaint models`")
    download.add_argument("--force", action="store_true", help="download again from scratch")
    download.set_defaults(handler=cmd_download)

    serve = commands.add_parser(
        "serve",
        help="a web app: paint a mask, run, watch, download",
        description="Serve the browser app (needs: pip install 'repaint[web]'). One run at a "
        "time per device; further runs queue.",
    )
    serve.add_argument("--model", default="digits", help="the model offered first")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    serve.add_argument(
        "--max-upload-mb", type=float, default=10.0, help="largest upload accepted (default: 10)"
    )
    serve.set_defaults(handler=cmd_serve)
    return parser


def add_inpaint_parser(commands: argparse._SubParsersAction) -> None:
    from repaint.pipeline import DEFAULT_MODEL, DTYPES, PRESETS
    from repaint.regions import FIT_MODES

    presets = ", ".join(f"{name} ({preset.describe()})" for name, preset in PRESETS.items())
    inpaint = commands.add_parser(
        "inpaint",
        help="inpaint your own images",
        description="Inpaint an image (or a folder of images) where its mask says. Masks are "
        "matched to images by file stem, or one mask file applies to all. Each output gets a "
        "JSON sidecar that reproduces it (--from-sidecar).",
    )
    inpaint.add_argument("image", nargs="?", help="an image file or a folder of images")
    inpaint.add_argument("--mask", help="a mask file or a folder of masks")
    inpaint.add_argument("--out", type=Path, metavar="DIR", help="output folder")
    inpaint.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"a name from `repaint models` or a checkpoint path (default: {DEFAULT_MODEL})",
    )
    inpaint.add_argument(
        "--model-config", metavar="CONF.yml", help="reference-format config of a checkpoint path"
    )
    inpaint.add_argument("--preset", default="paper", choices=PRESETS, help=presets)
    add_schedule_arguments(inpaint, over_preset=True)
    inpaint.add_argument(
        "--eta",
        metavar="ddpm|ETA",
        help="the step between jumps: ddpm (ancestral, the paper's) or DDIM with this eta in "
        "[0, 1] (0 = deterministic); default: the preset's",
    )
    inpaint.add_argument(
        "--num-samples", type=int, default=1, help="samples per image, as one batch"
    )
    inpaint.add_argument("--seed", type=int, help="run seed (default: a fresh one, recorded)")
    inpaint.add_argument(
        "--mask-mode",
        choices=("keep", "fill"),
        default="keep",
        help="keep: white = known (the reference's convention, default); fill: white = fill",
    )
    inpaint.add_argument(
        "--grow", type=int, default=0, metavar="N", help="grow the fill area by N px"
    )
    inpaint.add_argument(
        "--fit",
        choices=FIT_MODES,
        default="auto",
        help="how images of another size meet the model: region (default for larger images: "
        "inpaint around the holes), pad (default for smaller ones), resize, crop",
    )
    inpaint.add_argument(
        "--mask-blur",
        type=int,
        metavar="N",
        help="feather the pasted edge over N px (default: 0; 4 for Stable Diffusion models)",
    )
    text = inpaint.add_argument_group("Stable Diffusion models (--model FOLDER or hf:ORG/NAME)")
    text.add_argument("--prompt", help="what to paint into the hole")
    text.add_argument("--negative-prompt", default="", help="what to steer away from")
    text.add_argument(
        "--guidance-scale",
        type=float,
        help="classifier-free guidance scale (default: 7.5)",
    )
    inpaint.add_argument("--class", dest="class_label", help="ImageNet class id or name")
    inpaint.add_argument("--classifier-scale", type=float, help="classifier guidance scale")
    inpaint.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    inpaint.add_argument(
        "--dtype",
        default="fp32",
        choices=DTYPES,
        help="network precision: fp16/bf16 convolutions with GroupNorm, softmax and the "
        "diffusion maths in fp32 (default: fp32)",
    )
    add_speed_arguments(inpaint)
    inpaint.add_argument("--batch-size", type=int, help="samples per batch (default: all)")
    inpaint.add_argument(
        "--save-progress", action="store_true", help="write a GIF (and MP4) of the denoising"
    )
    inpaint.add_argument("--grid", action="store_true", help="write input | masked | samples")
    inpaint.add_argument("--from-sidecar", metavar="FILE.json", help="redo a recorded output")
    inpaint.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    inpaint.set_defaults(handler=cmd_inpaint)


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    from repaint.train import TrainConfig

    train = commands.add_parser(
        "train",
        help="train a diffusion prior on your images",
        description="Train a guided-diffusion UNet (learned variance, the published models' "
        "architecture and checkpoint format) on a folder of images or a built-in dataset "
        "(digits). Checkpoints go to --out; rerunning the same command resumes an "
        "interrupted run. The result loads with --model OUT/model.safetensors.",
    )
    train.add_argument("--data", required=True, help="a folder of images, or: digits")
    train.add_argument("--out", required=True, type=Path, metavar="DIR", help="run folder")
    help_text = {
        "image_size": "model size in pixels",
        "num_channels": "base width",
        "num_res_blocks": "residual blocks per level (depth)",
        "channel_mult": "width multipliers per level",
        "attention_resolutions": "resolutions with self-attention",
        "num_heads": "attention heads",
        "dropout": "dropout rate",
        "diffusion_steps": "training diffusion steps",
        "noise_schedule": "linear or cosine",
        "steps": "optimisation steps in all",
        "batch_size": "images per step",
        "lr": "AdamW learning rate",
        "ema_rate": "exponential moving average rate of the exported weights",
        "save_every": "checkpoint every N steps",
        "sample_every": "write a sample grid every N steps (0: never)",
        "seed": "seed of all training randomness",
    }
    for field in fields(TrainConfig):
        if field.name == "data":
            continue
        train.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(field.default),
            default=field.default,
            help=f"{help_text[field.name]} (default: {field.default})",
        )
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    train.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    train.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from repaint.device import resolve_device
    from repaint.train import TrainConfig, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if config.steps < 1 or config.batch_size < 1 or config.save_every < 1:
        raise RepaintError("--steps, --batch-size and --save-every must be at least 1")
    command = "repaint " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    try:
        path = train(
            config,
            args.out,
            device=resolve_device(args.device),
            progress=False if args.no_progress else None,
            command=command,
        )
    except KeyboardInterrupt:
        print(
            f"repaint: interrupted; rerun the same command to resume from {args.out}",
            file=sys.stderr,
        )
        return 130
    print(f"trained model: {path} (use it with --model {path})")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    from repaint.distributed import Context
    from repaint.jobs import Job, RunOptions, check_inputs, pair_inputs, read_sidecar
    from repaint.models import parse_class

    only_sample, sidecar = None, None
    if args.from_sidecar:
        sidecar = read_sidecar(args.from_sidecar)
        jobs = [Job(sidecar["name"], Path(sidecar["input"]), Path(sidecar["mask"]))]
        options = RunOptions(**sidecar["options"])
        only_sample = int(sidecar["sample"])
    else:
        if not args.image or not args.mask:
            raise RepaintError("inpaint needs IMAGE and --mask (or --from-sidecar FILE.json)")
        jobs = pair_inputs(args.image, args.mask)
        explicit = {
            field.name: getattr(args, field.name)
            for field in fields(JumpSchedule)
            if getattr(args, field.name) is not None
        }
        options = RunOptions(preset=args.preset, num_samples=args.num_samples, seed=args.seed)
        if explicit:
            options.schedule = {**options.jump_schedule().params(), **explicit}
        options.mask_mode, options.grow, options.fit = args.mask_mode, args.grow, args.fit
        options.mask_blur, options.batch_size = args.mask_blur, args.batch_size
        options.prompt, options.negative_prompt = args.prompt, args.negative_prompt
        options.guidance_scale = args.guidance_scale
        options.classifier_scale = args.classifier_scale
        options.eta = args.eta
        resolved = options.sampler_eta()  # the sidecar records the sampler, not "the preset's"
        options.eta = "ddpm" if resolved is None else resolved
        if args.class_label is not None:
            options.class_label = parse_class(args.class_label)
    if args.out is None:
        raise RepaintError("inpaint needs --out DIR, the folder for the results")
    options.jump_schedule()  # refuse a bad preset or schedule before loading anything
    keep_going = len(jobs) > 1  # a folder: record failures and go on; one image: fail now
    if not keep_going:
        check_inputs(jobs, options.mask_mode)
    context = Context.from_env()
    try:
        return _inpaint_share(args, context, jobs, options, keep_going, only_sample, sidecar)
    finally:
        context.close()


def _inpaint_share(
    args: argparse.Namespace,
    context: Context,
    jobs: list[Job],
    options: RunOptions,
    keep_going: bool,
    only_sample: int | None,
    sidecar: dict[str, Any] | None,
) -> int:
    """This process's share of `repaint inpaint` (all of it without torchrun); the model
    and device come from the sidecar being redone, else from the flags."""
    from repaint.device import new_seed
    from repaint.jobs import FAILURES, run_jobs
    from repaint.pipeline import load_inpainter

    if sidecar is not None:
        model, model_config = sidecar["model"]["model"], sidecar["model"]["model_config"]
        device, dtype = sidecar.get("device", args.device), sidecar.get("dtype", args.dtype)
    else:
        model, model_config, device, dtype = args.model, args.model_config, args.device, args.dtype

    total = len(jobs)
    options.seed = context.broadcast(options.seed if options.seed is not None else new_seed())
    jobs = context.share(jobs)
    inpainter = load_inpainter(
        model,
        device=context.device(device),
        dtype=dtype,
        model_config=model_config,
        acceleration=acceleration_from_args(args),
    )
    if (options.prompt or options.guidance_scale is not None) and not inpainter.text_conditioned:
        raise RepaintError(
            f"--prompt: model {inpainter.name} is not text-conditioned; prompts need a "
            "Stable Diffusion (latent diffusion) model"
        )
    if options.class_label is not None and not (inpainter.class_cond or inpainter.classifier):
        raise RepaintError(
            f"--class: model {inpainter.name} is neither class-conditional nor guided"
        )
    source = {
        "model": str(Path(model).resolve()) if Path(model).exists() else str(model),
        "model_config": None if model_config is None else str(Path(model_config).resolve()),
        "name": inpainter.name,
        "checkpoint": str(inpainter.checkpoint),
        "sha256": inpainter.sha256,
    }
    if sidecar is not None and sidecar["model"].get("sha256") not in (None, inpainter.sha256):
        warnings.warn(
            f"{args.from_sidecar}: the model file changed since (SHA-256 differs)", stacklevel=1
        )
    summary = run_jobs(
        inpainter,
        jobs,
        options,
        args.out,
        model_source=source,
        device=str(inpainter.device),
        dtype=dtype,
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
        f"{rate:.1f} model evaluations/s, seed {options.seed}; outputs in {args.out}"
    )
    if failed:
        raise RepaintError(f"{failed} of {total} image(s) failed; see {args.out / FAILURES}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from repaint.web.app import create_app
    except ImportError:
        raise RepaintError("serve needs the optional extra: pip install 'repaint[web]'") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(
            f"--host {args.host}: the app has no authentication; anyone who can reach this "
            "address can use it",
            stacklevel=1,
        )
    app = create_app(model=args.model, device=args.device, max_upload_mb=args.max_upload_mb)
    print(f"repaint: serving on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from repaint.masks import write_masks

    if args.count < 1:
        raise RepaintError(f"--count must be at least 1, got {args.count}")
    paths = write_masks(args.type, args.size, args.count, args.seed, args.out)
    print(f"wrote {len(paths)} {args.type} mask(s) of {args.size}x{args.size} to {args.out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from repaint.models import format_model_table, list_models, repaint_home

    print(format_model_table(list_models()))
    print(f"\ncache: {repaint_home()} (set REPAINT_HOME to move it)")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from repaint.models import download

    path = download(args.name, force=args.force)
    print(f"{args.name}: {path}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"repaint: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return args.handler(args)
    except RepaintError as error:
        print(f"repaint: error: {error}", file=sys.stderr)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"repaint: error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("repaint: interrupted", file=sys.stderr)
        return 130
    return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
