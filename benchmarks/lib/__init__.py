"""What the benchmark scripts share: the methods they compare, how they score and time them,
and how they write their reports. The scripts in `benchmarks/` are its command lines."""
