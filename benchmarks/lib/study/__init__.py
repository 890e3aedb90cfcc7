"""The experiments of benchmarks/study.py, one module each, and its tables and figures."""
