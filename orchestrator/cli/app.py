"""The `ceiling` application: registers every command group."""

from __future__ import annotations

import typer

from orchestrator.cli import dashboard, law_commands, report, serve, submit, sweeps, tokens
from orchestrator.cli import recall as recall_cli

app = typer.Typer(
    name="ceiling",
    help=(
        "Scaling studies of Transformer and non-Transformer language models.\n\n"
        "Submit a sweep (plan, run, resume, status, runs), query fitted scaling laws (fit, laws, predict, "
        "compare), write a shareable HTML report (report) and open the dashboard. Exit codes: 0 ok, "
        "2 bad input (the message names the field), 1 failure during work. --json prints one JSON document on stdout.\n\n"
        "Quick start:  ceiling run examples/quickstart.yaml  then  ceiling dashboard"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("plan")(sweeps.plan)
app.command("run")(sweeps.run)
app.command("resume")(sweeps.resume)
app.command("status")(sweeps.status)
app.command("runs")(sweeps.runs)
app.command("fit")(law_commands.fit)
app.command("laws")(law_commands.laws_command)
app.command("predict")(law_commands.predict)
app.command("compare")(law_commands.compare)
app.command("recall")(recall_cli.recall)
app.command("dashboard")(dashboard.dashboard)
app.command("report")(report.report)
app.command("serve")(serve.serve)
app.command("submit")(submit.submit)
app.add_typer(tokens.app, name="token")


def main() -> None:
    app()
