"""The `omniroute` command: one sub-app per noun as capabilities land."""

from __future__ import annotations

import typer

from companion.quota import quota
from companion.serve import serve
from companion.status import status
from companion.translate import translate
from companion.usage import usage

app = typer.Typer(
    help="OmniRoute Edge companion: run the gateway locally and manage your deployment.", no_args_is_help=True
)
app.command()(serve)
app.command()(status)
app.command()(translate)
app.command()(usage)
app.command()(quota)


@app.callback()
def _root() -> None:
    """OmniRoute Edge companion."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
