"""`repaint demo` and `repaint example`: the embedded model on inputs that ship with the
package, so a fresh install can be tried offline."""

from __future__ import annotations

import argparse

from repaint.presets import DEFAULT_PRESET, PRESETS, describe_presets


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="inpaint six held-out digits with the embedded model (offline, about 20 s)",
        description="Inpaint six held-out digits, one under each of the paper's mask kinds, "
        "with the embedded `digits` model, and write a labelled comparison grid and "
        "denoising animation.",
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: %(default)s)")
    demo.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS, help=describe_presets())
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(handler=run_demo)
    example = commands.add_parser(
        "example",
        help="write the example inputs that ship with the package",
        description="Write digit.png and digit_mask.png (a held-out digit and its keep-mask), "
        "and digits/ with masks/ (six held-out digits, one mask of each of the paper's kinds, "
        "matched by file name), to try every command offline.",
    )
    example.add_argument("--out", default=".", help="output folder (default: %(default)s)")
    example.set_defaults(handler=run_example)


def run_demo(args: argparse.Namespace) -> int:
    from repaint.demo import run_demo as demo

    result = demo(args.out, preset=args.preset, progress=not args.no_progress)
    print(
        f"demo: 6 held-out digits, {result.model_evaluations} model evaluations in "
        f"{result.seconds:.0f} s with the '{args.preset}' preset"
    )
    print(f"demo: comparison grid -> {result.comparison}")
    if result.animation:
        shown = ", ".join(map(str, result.animation))
        print(f"demo: denoising animation (x_t | predicted x0) -> {shown}")
    return 0


def run_example(args: argparse.Namespace) -> int:
    from repaint.examples import write_examples

    written = write_examples(args.out)
    print(
        f"example: {len(written)} files -> {args.out} (digit.png, digit_mask.png, digits/, masks/)"
    )
    return 0
