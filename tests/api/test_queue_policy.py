"""The queue's fair policy (no Ray, no server): round-robin over owners, oldest submission first."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.store.service_queue import QueueEntry, pick_next

T0 = datetime(2026, 1, 1, 12, 0, 0)


def entry(
    name: str, owner: str, minute: int, status: str = "queued", started: int | None = None
) -> QueueEntry:
    return QueueEntry(
        name=name,
        owner=owner,
        status=status,
        spec_hash=name,
        trials=1,
        submitted_at=T0 + timedelta(minutes=minute),
        started_at=None if started is None else T0 + timedelta(minutes=started),
        finished_at=None,
        cancel_requested=False,
        error=None,
    )


def run_queue(entries: list[QueueEntry], slots: int) -> list[str]:
    """Simulate the scheduler: start the pick while a slot is free; the oldest running ends first."""
    order, clock, entries = [], 1000, list(entries)
    while any(e.status == "queued" for e in entries):
        while sum(e.status == "running" for e in entries) < slots:
            chosen = pick_next(entries)
            if chosen is None:
                break
            clock += 1
            entries = [
                QueueEntry(**(vars(e) | {"status": "running", "started_at": T0 + timedelta(minutes=clock)}))
                if e.name == chosen.name
                else e
                for e in entries
            ]
            order.append(chosen.name)
        running = sorted((e for e in entries if e.status == "running"), key=lambda e: e.started_at)
        if running:
            entries = [
                QueueEntry(**(vars(e) | {"status": "done"})) if e.name == running[0].name else e
                for e in entries
            ]
    return order


def test_one_users_fifty_sweeps_do_not_starve_anothers_one():
    many = [entry(f"alice-{i:02d}", "alice", i) for i in range(50)]
    order = run_queue([*many, entry("bob-only", "bob", 30)], slots=1)
    # bob submitted after alice's 30th sweep, yet runs second: right after alice's first
    assert order.index("bob-only") == 1
    assert [n for n in order if n.startswith("alice")] == [e.name for e in many]  # alice's own stay in order


def test_round_robin_over_three_owners_with_two_slots():
    queue = [entry(f"a{i}", "a", i) for i in range(4)] + [entry(f"b{i}", "b", 10 + i) for i in range(2)]
    queue += [entry("c0", "c", 20)]
    order = run_queue(queue, slots=2)
    assert order[:3] == ["a0", "b0", "c0"]
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_the_owner_with_fewer_running_goes_first_and_nothing_queued_is_none():
    entries = [
        entry("a-running", "a", 0, status="running", started=1),
        entry("a-next", "a", 1),
        entry("b-next", "b", 5),
    ]
    assert pick_next(entries).name == "b-next"
    assert pick_next([entry("done", "a", 0, status="done", started=1)]) is None
    assert pick_next([]) is None
