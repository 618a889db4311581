"""Reading, templating and validating the manifest (no I/O beyond reading files)."""
