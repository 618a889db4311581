"""decl's benchmarks (not part of the installed package)."""
