"""`ceiling token create | revoke | list`: the bearer tokens of `ceiling serve`, kept hashed in the store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.common import (
    BadInput,
    db_url,
    err_console,
    guarded,
    out_console,
    print_json,
    workdir_path,
)
from orchestrator.cli.sweeps import DbOption, JsonOption, WorkdirOption

app = typer.Typer(
    name="token",
    help="API tokens of `ceiling serve` (one per user; stored hashed, shown once).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _store(db: str | None, workdir):  # type: ignore[no-untyped-def]
    from orchestrator.store import Store

    return Store.open(db_url(db, workdir_path(workdir)))


@app.command("create")
def create(
    user: Annotated[
        str, typer.Option("--user", help="the user the token acts as (owner of what it submits)")
    ],
    admin: Annotated[bool, typer.Option("--admin", help="may cancel anyone's sweeps")] = False,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a token for USER and print it once (only its hash is stored; keep it safe).

    Examples:
      ceiling token create --user alice
      ceiling token create --user ops --admin --json
    """

    def body() -> None:
        from orchestrator.store import api_tokens

        try:
            api_tokens.check_user(user)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        store = _store(db, workdir)
        try:
            info, token = api_tokens.create(store, user, admin=admin)
        finally:
            store.close()
        if json_out:
            print_json(info.to_json() | {"token": token})
            return
        out_console(False).print(token, highlight=False, markup=False, soft_wrap=True)
        err_console.print(
            f"token {info.id} for {info.user}{' (admin)' if info.admin else ''}: shown once, stored hashed. "
            "Clients read it from CEILING_TOKEN or ~/.config/ceiling/token (mode 0600); "
            f"revoke it with `ceiling token revoke {info.id}`",
            highlight=False,
        )

    guarded(body)


@app.command("revoke")
def revoke(
    token_id: Annotated[str | None, typer.Argument(help="the token's id (see `ceiling token list`)")] = None,
    user: Annotated[str | None, typer.Option("--user", help="revoke every token of this user")] = None,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Revoke a token by its id, or every token of a user; the server refuses it (401) from then on.

    Examples: ceiling token revoke 3f9a1c2b7d0e  |  ceiling token revoke --user alice
    """

    def body() -> None:
        from orchestrator.store import api_tokens

        if (token_id is None) == (user is None):
            raise BadInput("give a TOKEN_ID or --user NAME (one of them)")
        store = _store(db, workdir)
        try:
            revoked = api_tokens.revoke(store, token_id=token_id, user=user)
        finally:
            store.close()
        if not revoked:
            raise BadInput(
                f"no live token {'with id ' + repr(token_id) if token_id else 'of user ' + repr(user)}; "
                "see `ceiling token list`"
            )
        if json_out:
            print_json({"revoked": [info.to_json() for info in revoked]})
            return
        for info in revoked:
            out_console(False).print(f"revoked token {info.id} of {info.user}", highlight=False)

    guarded(body)


@app.command("list")
def listing(
    all_tokens: Annotated[bool, typer.Option("--all", help="include revoked tokens")] = False,
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """List tokens (id, user, admin, created, revoked); never the tokens themselves."""

    def body() -> None:
        from orchestrator.store import api_tokens

        store = _store(db, workdir)
        try:
            tokens = api_tokens.listing(store, include_revoked=all_tokens)
        finally:
            store.close()
        if json_out:
            print_json({"tokens": [info.to_json() for info in tokens]})
            return
        table = Table(title="API tokens", title_justify="left")
        for column in ("id", "user", "admin", "created", "revoked"):
            table.add_column(column)
        for info in tokens:
            table.add_row(
                info.id,
                info.user,
                "yes" if info.admin else "",
                info.created_at.strftime("%Y-%m-%d %H:%M"),
                info.revoked_at.strftime("%Y-%m-%d %H:%M") if info.revoked_at else "",
            )
        out_console(False).print(table)

    guarded(body)
