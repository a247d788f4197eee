"""Wire formats. Pure: no I/O imports (enforced by import-linter)."""
