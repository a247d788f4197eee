"""Lambda entry points. The three functions never import each other (enforced by import-linter)."""
