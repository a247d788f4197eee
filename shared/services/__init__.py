"""Use cases the entry points call: one service per capability, ports passed in."""
