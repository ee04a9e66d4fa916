"""The Qt-free quantify job behind the GUI worker: progress, failures, GPU fallback."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_xrfquant._napari import _jobs
from napari_xrfquant.jobs import Progress, run


def drain(generator):
    """Run a job to its end: (its events, its Outcome)."""
    events = []
    outcome = run(generator, events.append)
    return events, outcome


def fake_iter_quantify(fail_on: set[str], calls: list[str]):
    """An iter_quantify stand-in: 3 chunks, fails on the devices in ``fail_on``."""

    def run(data, energy_keV, model=None, device="auto", batch_size=None, refine=0,
            counts_scale=None):
        calls.append(device)
        for done in (1, 2, 3):
            if device in fail_on and done == 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield Progress(done, 3)
        return f"result on {device}"

    return run


def test_progress_passes_through_and_result_returns(monkeypatch) -> None:
    import napari_xrfquant.inference as inference

    calls: list[str] = []
    monkeypatch.setattr(inference, "iter_quantify", fake_iter_quantify(set(), calls))
    events, outcome = drain(_jobs.quantify_job(np.zeros((1, 2, 4)), None, None, "cpu"))
    assert events == [Progress(1, 3), Progress(2, 3), Progress(3, 3)]
    assert outcome.result == "result on cpu" and outcome.error is None


def test_gpu_out_of_memory_retries_on_cpu_with_a_notice(monkeypatch) -> None:
    import napari_xrfquant.inference as inference

    calls: list[str] = []
    monkeypatch.setattr(inference, "iter_quantify", fake_iter_quantify({"cuda"}, calls))
    events, outcome = drain(_jobs.quantify_job(np.zeros((1, 2, 4)), None, None, "cuda"))
    assert calls == ["cuda", "cpu"]
    notices = [e for e in events if isinstance(e, _jobs.Notice)]
    assert len(notices) == 1 and "CPU" in notices[0].message
    assert outcome.result == "result on cpu"


def test_other_failures_come_back_as_outcome_errors(monkeypatch) -> None:
    import napari_xrfquant.inference as inference

    calls: list[str] = []
    monkeypatch.setattr(inference, "iter_quantify", fake_iter_quantify({"cpu"}, calls))
    _, outcome = drain(_jobs.quantify_job(np.zeros((1, 2, 4)), None, None, "cpu"))
    assert calls == ["cpu"]  # no retry on the CPU itself
    assert isinstance(outcome.error, RuntimeError)


@pytest.mark.parametrize(
    ("message", "expected"),
    [("CUDA out of memory. Tried", True), ("shape mismatch", False)],
)
def test_is_out_of_memory(message, expected) -> None:
    assert _jobs.is_out_of_memory(RuntimeError(message)) is expected


def test_job_progress_drives_the_dock_bar_and_naparis_activity_bar(qtbot):
    from qtpy.QtWidgets import QProgressBar

    from napari_xrfquant._napari.widgets._job_progress import JobProgress

    bar = QProgressBar()
    qtbot.addWidget(bar)
    job = JobProgress("Calibrate on test", 0, bar)  # steps not known yet
    assert (bar.minimum(), bar.maximum()) == (0, 0)  # Qt's busy bar
    job.show(3, 120)
    assert (bar.maximum(), bar.value()) == (120, 3)
    assert (job._activity.total, job._activity.n) == (120, 3)
    job.show(40)
    assert bar.value() == 40 and job._activity.n == 40
    job.close()
    assert bar.value() == 40  # a cancelled job shows where it stopped
    frames = JobProgress("Live test")  # no dock bar, no total: frames are counted
    frames.advance()
    frames.advance()
    assert frames.done == 2 and frames._activity.n == 2
    frames.close()


def _slow_job(n: int, fail: bool = False):
    import time

    for done in range(1, n + 1):
        time.sleep(0.02)
        yield Progress(done, n, "count")
    if fail:
        raise ValueError("the last unit failed")
    return n


@pytest.mark.parametrize(("fail", "cancel", "end"), [(False, False, "done"),
                                                     (True, False, "failed"),
                                                     (False, True, "cancelled")])
def test_job_controls_run_one_job_with_evented_states(qtbot, fail, cancel, end):
    """The one lifecycle every dock uses: Run disabled while a job runs, Cancel
    enabled only then, the bar and phase shown, the end said in the status line."""
    from napari_xrfquant._napari.widgets._job_controls import JobControls

    controls = JobControls("Test")
    qtbot.addWidget(controls)
    ready = {"ok": True}
    run_button = controls.add_run_button("Run", ready=lambda: ready["ok"])
    states: list[str] = []
    results: list[object] = []
    controls.runner.state_changed.connect(states.append)
    assert run_button.isEnabled() and not controls.cancel_button.isEnabled()
    threads: set[bool] = set()  # every handler runs in the GUI thread, in order
    gui = threading.get_ident()
    worker = controls.runner.start(_slow_job(200 if cancel else 5, fail), "Counting",
                                   lambda outcome: results.append(outcome.result),
                                   on_event=lambda event: threads.add(
                                       threading.get_ident() == gui))
    assert controls.runner.start(_slow_job(1), "again", results.append) is worker  # one at a time
    assert not run_button.isEnabled() and controls.cancel_button.isEnabled()
    if cancel:
        qtbot.waitUntil(lambda: controls.progress.value() >= 2, timeout=10_000)
        controls.runner.cancel()
        assert controls.runner.state == "cancelling" and controls.status.text() == "cancelling..."
    qtbot.waitUntil(lambda: not controls.runner.running, timeout=20_000)
    assert states[0] == "running" and states[-1] == end and controls.runner.state == end
    assert threads == {True}
    assert run_button.isEnabled() and not controls.cancel_button.isEnabled()
    if end == "done":
        assert results == [5] and controls.progress.value() == 5
    elif end == "failed":
        assert results == [] and controls.status.text() == "failed: the last unit failed"
    else:
        assert results == [] and "cancelled" in controls.status.text()
        assert controls.progress.value() < 200  # stopped where it was
    ready["ok"] = False
    controls.refresh()
    assert not run_button.isEnabled()


def test_a_failing_result_handler_ends_the_job_as_failed(qtbot):
    """A dock's handler that raises must not leave the job open (a dock frozen on
    "running"): the error is said in one line and Run comes back."""
    from napari_xrfquant._napari.widgets._job_controls import JobControls

    controls = JobControls("Test")
    qtbot.addWidget(controls)
    run_button = controls.add_run_button("Run")

    def broken(outcome):
        raise ValueError("the handler broke\nsecond line")

    controls.runner.start(_slow_job(2), "Counting", broken)
    qtbot.waitUntil(lambda: not controls.runner.running, timeout=10_000)
    assert controls.runner.state == "failed"
    assert controls.status.text() == "failed: the handler broke"
    assert run_button.isEnabled()
