"""Examples that extend svitt_mm from outside the package (importable from the repo root)."""
