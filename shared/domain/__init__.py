"""Pure rules and types. Imports nothing that does I/O (enforced by import-linter)."""
