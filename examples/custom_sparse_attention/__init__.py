"""A block pattern registered into svitt_mm from outside the package (see README.md)."""
