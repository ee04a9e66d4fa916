"""The one job type: events passed on, one loop, one cancel token, one outcome."""

from __future__ import annotations

import pytest

from napari_xrfquant.jobs import (
    Cancelled,
    CancelToken,
    Notice,
    Outcome,
    Progress,
    drive,
    iterate,
    run,
)


def counting(n: int, released: list[str], fail_at: int | None = None):
    """A job of ``n`` units that records whether its clean-up ran."""
    try:
        for done in range(1, n + 1):
            if done == fail_at:
                raise ValueError(f"unit {done} failed")
            yield Progress(done, n, "count")
        return f"{n} counted"
    finally:
        released.append("released")


def keeping(n: int):
    """A job that returns what it has when cancelled (as the trainer does)."""
    kept = 0
    try:
        for done in range(1, n + 1):
            kept = done
            yield Progress(done, n, "keep")
    except Cancelled:
        return f"kept {kept}"
    return f"all {kept}"


def test_run_passes_every_event_and_returns_the_result():
    events: list[object] = []
    released: list[str] = []
    outcome = run(counting(3, released), events.append)
    assert events == [Progress(1, 3, "count"), Progress(2, 3, "count"), Progress(3, 3, "count")]
    assert outcome == Outcome(result="3 counted")
    assert released == ["released"]
    assert drive(counting(2, [])) == "2 counted"


def test_an_error_is_the_outcome_and_drive_raises_it():
    released: list[str] = []
    outcome = run(counting(5, released, fail_at=2))
    assert isinstance(outcome.error, ValueError) and outcome.result is None
    assert not outcome.cancelled and released == ["released"]
    with pytest.raises(ValueError, match="unit 2 failed"):
        drive(counting(5, [], fail_at=2))


def test_cancel_stops_at_the_next_event_and_releases_the_job():
    token = CancelToken()
    released: list[str] = []
    seen: list[object] = []

    def on_event(event: object) -> None:
        seen.append(event)
        if len(seen) == 2:
            token.cancel()

    outcome = run(counting(100, released), on_event, token)
    assert len(seen) == 2  # nothing after the event it was cancelled at
    assert outcome.cancelled and outcome.result is None and outcome.error is None
    assert released == ["released"]
    with pytest.raises(Cancelled):
        outcome.unwrap()


def test_a_job_may_keep_its_result_on_cancel():
    token = CancelToken()
    outcome = run(keeping(50), lambda event: token.cancel() if event.done == 4 else None, token)
    assert outcome == Outcome(result="kept 4", cancelled=True)
    assert outcome.unwrap() == "kept 4"


def test_cancel_is_not_swallowed_by_a_jobs_except_exception():
    def stubborn():
        for done in range(10):
            try:
                yield Progress(done, 10)
            except Exception:  # a job guarding its own failures, not the user's cancel
                continue
        return "finished"

    token = CancelToken()
    token.cancel()
    assert run(stubborn(), None, token).cancelled


def test_iterate_hands_notices_through_and_closing_it_closes_the_job():
    released: list[str] = []

    def noticing():
        try:
            yield Notice("the data are not counts")
            yield Progress(1, 1)
            return "done"
        finally:
            released.append("released")

    events = iterate(noticing())
    assert next(events) == Notice("the data are not counts")
    events.close()  # a worker torn down mid-job
    assert released == ["released"]
