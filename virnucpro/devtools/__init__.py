"""Developer tools: random-weight checkpoints in the real on-disk formats (tests, benchmarks)."""
