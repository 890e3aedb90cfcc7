"""The distribution's name and version, for install hints, sidecars, download headers and
`--version`. The import name is `repaint`; the name on the package index is not, because
`repaint` there belongs to another project."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "repaint-diffusion"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"


def install_hint(extra: str) -> str:
    """The command that installs an optional extra of this distribution."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"
