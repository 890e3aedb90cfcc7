"""`repaint train` and its parts: settings (`config`, torch-free), streaming data, the loop,
checkpoints, fine-tuning sources and validation by inpainting. Import the modules you need:
the package itself imports nothing, so `repaint train --help` stays light."""
