"""The `omniroute` command: one sub-app per noun as capabilities land."""

from __future__ import annotations

import typer

from companion import accounts, combos, configure, keys, providers, sync, target
from companion.login import login
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
app.command()(login)
app.add_typer(target.app, name="target")
app.add_typer(accounts.app, name="accounts")
app.add_typer(providers.app, name="providers")
app.add_typer(combos.app, name="combos")
app.add_typer(keys.app, name="keys")
app.add_typer(configure.app, name="configure")
app.add_typer(sync.app, name="sync")


@app.callback()
def _root() -> None:
    """OmniRoute Edge companion."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
