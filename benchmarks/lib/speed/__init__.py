"""The parts of benchmarks/speed.py: the cases it times, how it times them, its report."""
