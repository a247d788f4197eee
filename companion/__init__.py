"""The `omniroute` companion CLI: runs the gateway locally; links accounts and syncs config in later issues."""
