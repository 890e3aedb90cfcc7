"""The installed package's version, for sidecars, download headers and `--version`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("repaint")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
