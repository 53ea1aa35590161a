"""Submitting a sweep to the service's queue: parse and validate the spec, plan and store its trials,
and queue it (idempotent: the same spec again is the same sweep).

A bad spec raises :class:`SpecInvalid`, whose ``problems`` carry the field path of each error as a
list (``["architectures", 2]``) beside the message the CLI prints for it (exit code 2 / HTTP 422).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.operations.errors import BadInput

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: a real sweep file is a few kB
JSON_TYPES = ("application/json",)


class SpecInvalid(BadInput):
    """A sweep spec that cannot be used: one ``{"loc": [...], "msg": ...}`` per problem."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems
        super().__init__("sweep spec is invalid:\n" + "\n".join(f"  - {p['msg']}" for p in problems))


class SweepConflict(BadInput):
    """A changed spec under the name of a sweep that is queued or running (HTTP 409)."""


@dataclass(frozen=True)
class SubmitResult:
    sweep: str
    status: str
    created: bool
    trials: int
    owner: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "status": self.status,
            "created": self.created,
            "trials": self.trials,
            "owner": self.owner,
        }


def _problem(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg}


def parse_spec_body(body: bytes, content_type: str | None = None) -> Any:
    """The spec validated from a request body: JSON for ``application/json``, else YAML (which reads
    JSON too). Raises :class:`SpecInvalid` naming the field path and the fix."""
    from orchestrator.spec import SpecError, SweepSpec, validation_problems

    data = _decode(body, content_type)
    if not isinstance(data, dict):
        raise SpecInvalid(
            [
                _problem(
                    [],
                    "(top level): expected a mapping of fields (name:, architectures:, ...), "
                    f"got {type(data).__name__}",
                )
            ]
        )
    from pydantic import ValidationError

    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(_public_loc(loc, where), msg) for loc, where, msg in validation_problems(exc)]
        raise SpecInvalid(problems) from None
    except SpecError as exc:  # pragma: no cover - validators raise ValueError, wrapped by pydantic
        raise SpecInvalid([_problem([], p) for p in exc.problems]) from None


def _public_loc(loc: tuple[Any, ...], where: str) -> list[Any]:
    """The path as a list, as the message names it (``architectures[2].name`` -> ["architectures", 2, "name"])."""
    if where == "(top level)" or not loc:
        return []
    import re

    return [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", where)]


def _decode(body: bytes, content_type: str | None) -> Any:
    import yaml

    from orchestrator.spec import _MAX_VALUES, _exceeds  # the sweep file's own alias-bomb guard

    if len(body) > MAX_SPEC_BYTES:
        raise SpecInvalid(
            [_problem(["body"], f"the spec is {len(body)} bytes; the limit is {MAX_SPEC_BYTES}")]
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise SpecInvalid(
            [_problem(["body"], f"not UTF-8 text (byte 0x{body[exc.start]:02x} on line {line}); send UTF-8")]
        ) from None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in JSON_TYPES:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecInvalid(
                [_problem(["body"], f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
            ) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise SpecInvalid(
                [
                    _problem(
                        ["body"], f"YAML syntax error at {where}: {problem}; fix the indentation or quoting"
                    )
                ]
            ) from None
    if _exceeds(data, _MAX_VALUES):
        raise SpecInvalid(
            [_problem(["body"], f"the spec expands to more than {_MAX_VALUES} values (YAML aliases?)")]
        )
    return data


def spec_hash(spec: Any) -> str:
    """The hash of the validated spec's canonical JSON: equal specs (however written) hash alike."""
    from orchestrator.spec import spec_to_dict

    canonical = json.dumps(spec_to_dict(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_sweep(
    store: Any,
    spec: Any,
    *,
    owner: str,
    workdir: Path,
    allow_unmatched: bool = False,
) -> SubmitResult:
    """Queue a validated spec for ``owner``: plan its trials and store them (trials already stored are
    kept: content-addressed), then queue it. The same spec again returns the same sweep."""
    from orchestrator.store import service_queue

    digest = spec_hash(spec)
    existing = service_queue.get(store, spec.name)
    if (
        existing is not None
        and existing.spec_hash == digest
        and existing.status in ("queued", "running", "done")
    ):
        return SubmitResult(spec.name, existing.status, False, existing.trials, existing.owner)
    if existing is not None and existing.status in ("queued", "running"):
        raise SweepConflict(
            f"name: sweep {spec.name!r} is {existing.status} with a different spec; cancel it first "
            "(POST /v1/sweeps/{name}/cancel) or give this spec another name"
        )
    trials = _plan_and_store(store, spec, workdir=workdir, allow_unmatched=allow_unmatched)
    entry, created = service_queue.submit(
        store, name=spec.name, spec=_spec_dict(spec), spec_hash=digest, owner=owner, trials=trials
    )
    return SubmitResult(entry.name, entry.status, created, entry.trials, entry.owner)


def _spec_dict(spec: Any) -> dict[str, Any]:
    from orchestrator.spec import spec_to_dict

    return spec_to_dict(spec)


def _plan_and_store(store: Any, spec: Any, *, workdir: Path, allow_unmatched: bool) -> int:
    """Tokenize the corpus (cached), plan the trials, refuse an unmatched study, store sweep and trials."""
    from orchestrator.data.corpus import CorpusError
    from orchestrator.kinds import plan_trials
    from orchestrator.matching import check_matched, unmatched_message
    from orchestrator.provenance import code_version
    from orchestrator.scheduling.runner import prepare_spec_data
    from orchestrator.trial import PlanError

    try:
        data = prepare_spec_data(spec)
        trials = plan_trials(spec, data.vocab_size)
    except (CorpusError, PlanError) as exc:
        raise BadInput(str(exc)) from None
    items = check_matched(spec, trials)
    if not allow_unmatched and not all(i.matched for i in items):
        raise BadInput(unmatched_message(items))
    store.upsert_sweep(spec.name, _spec_dict(spec), workdir=str(workdir), code_version=code_version())
    store.add_trials(spec.name, [t.row() for t in trials])
    return len(trials)
