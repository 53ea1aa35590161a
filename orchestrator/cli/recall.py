"""`ceiling recall [SWEEP] [--json]`: accuracy vs width and state size, and the smallest that reaches 90%."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli.common import BadInput, guarded, open_store, out_console, print_json
from orchestrator.cli.sweeps import DbOption, JsonOption, WorkdirOption
from orchestrator.units import format_count


def _cell(spread: dict[str, Any] | None) -> str:
    if not spread:
        return "-"
    text = f"{spread['mean']:.3f}"
    if spread["n"] > 1:
        text += f" ±{spread['std']:.3f} (n={spread['n']})"
    return text


def _tables(document: dict[str, Any]) -> list[Table]:
    settings, hardest = document["settings"], document["hardest"]
    title = (
        f"{document['sweep']}: {document['task']} {document['metric']} at the best lr per width "
        f"(trained on {', '.join(document['train_settings'])}; hardest test setting {hardest})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("arch", "width", "best lr", "params", f"state @{hardest}", *settings):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for row in document["rows"]:
        table.add_row(
            row["arch"],
            str(row["width"]),
            f"{row['best_lr']:.1e}",
            format_count(row["params_non_embedding"]),
            format_count(row["state_size"][hardest]),
            *(_cell(row["accuracy"][name]) for name in settings),
        )
    reached = Table(
        title=f"smallest width / state size reaching {document['metric']} >= {document['threshold']:g}",
        title_justify="left",
    )
    reached.add_column("arch")
    for name in settings:
        reached.add_column(name + (" (hardest)" if name == hardest else ""), justify="right")
    for arch in dict.fromkeys(r["arch"] for r in document["reached"]):
        cells = []
        for name in settings:
            entry = next(r for r in document["reached"] if r["arch"] == arch and r["setting"] == name)
            if entry["min_width"] is None:
                best = entry["best_accuracy"]
                cells.append("not reached" + ("" if best is None else f" (best {best:.2f})"))
            else:
                cells.append(f"d={entry['min_width']} / state {format_count(entry['min_state_size'])}")
        reached.add_row(arch, *cells)
    return [table, reached]


def recall(
    sweep: Annotated[
        str | None, typer.Argument(help="recall sweep name; every recall sweep if omitted")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="accuracy to reach")] = 0.9,
    metric: Annotated[
        str,
        typer.Option("--metric", help="recall_accuracy (per answer) | recall_exact (copy: whole strings)"),
    ] = "recall_accuracy",
    workdir: WorkdirOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Recall study results: accuracy vs width and state size; the smallest reaching 90%.

    Per architecture and test setting: accuracy at the best learning rate of each width, with its spread
    over seeds, the recurrent state size at that setting, and the smallest width / state size whose
    accuracy reaches --threshold (or "not reached").

    Examples: ceiling recall recall-demo  |  ceiling recall recall-demo --json
    """

    def body() -> None:
        from orchestrator.kinds import kind_named
        from orchestrator.recall.analysis import NoRecallTrials, recall_sweeps

        if metric not in ("recall_accuracy", "recall_exact"):
            raise BadInput(f"--metric: unknown {metric!r}; use recall_accuracy or recall_exact")
        if not 0 < threshold <= 1:
            raise BadInput(f"--threshold: must be in (0, 1], got {threshold}")
        store = open_store(db, workdir)
        if sweep is not None:
            if store.get_sweep(sweep) is None:
                known = ", ".join(s.name for s in store.sweeps()) or "none yet"
                raise BadInput(f"sweep {sweep!r} is not in the store; known sweeps: {known}")
            names = [sweep]
        else:
            names = recall_sweeps(store)
            if not names:
                raise BadInput(
                    "no recall studies in the store; run one first: ceiling run examples/recall.yaml"
                )
        documents = []
        for name in names:
            try:
                documents.append(kind_named("recall").points(store, name, metric, threshold=threshold))
            except NoRecallTrials as exc:
                raise BadInput(str(exc)) from None
            except ValueError as exc:
                raise BadInput(str(exc)) from None
        if json_out:
            print_json(documents[0] if sweep is not None else {"sweeps": documents})
            return
        console = out_console(False)
        for document in documents:
            for table in _tables(document):
                console.print(table)
            if document["not_done"]:
                console.print(
                    f"{len(document['not_done'])} trial(s) not done are left out; see `ceiling status "
                    f"{document['sweep']}`",
                    style="yellow",
                )

    guarded(body)
