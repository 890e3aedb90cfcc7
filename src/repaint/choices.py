"""The words a user chooses between, in one module light enough for `repaint --help`.

The command line, the web form, sidecars and the Python API all accept these names; the
modules that act on them (masks, regions, networks) take them already checked.
"""

DEFAULT_MODEL = "digits"
"""The embedded 32 px digits model: works offline, made for digits, not photos."""

MASK_MODES = {
    "keep": "white = keep, black = fill (the reference's masks)",
    "fill": "white = fill, black = keep (IOPaint, Stable Diffusion)",
}
"""What a white mask pixel means, in the words every door uses."""

FIT_MODES = ("auto", "region", "pad", "resize", "crop")
"""How an image of another size meets a model of one fixed size (see `repaint.regions`)."""

DTYPES = ("fp32", "fp16", "bf16")
"""Network precisions: fp16/bf16 convolutions, the diffusion maths always in fp32."""

DEVICES = ("auto", "cpu", "cuda", "mps")

MASK_KINDS = ("thin", "thick", "ev2li", "nn2", "ex64", "genhalf")
"""The six mask kinds of the RePaint paper (`repaint masks --type`)."""


def flip_hint(mode: str) -> str:
    """How to say the other convention, for warnings about masks that look inverted."""
    other = "fill" if mode == "keep" else "keep"
    return f"--mask-mode {other} (mask_mode={other!r}: {MASK_MODES[other]})"
