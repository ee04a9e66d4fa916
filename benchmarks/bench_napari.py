"""Time the napari side on the sample cube: open, Quantify through the widget, inspector clicks.

Opens a napari viewer (hidden), reads the sample cube (:mod:`napari_xrfquant.sample`)
through the plugin's reader, runs the Quantify widget on the CPU with the
bundled model (or ``--model``) until its worker has finished and the layers
exist, re-masks the background at another threshold, then clicks the Spectrum
inspector on ``--clicks`` different plate pixels (after one first click that
is reported apart) and prints the figures. A click is timed from the world
position to the drawn plot: pixel read, composition from the maps, simulator
spectrum, matplotlib draw. Last, as many plain ``add_image`` calls as Quantify
added layers go into the same viewer, with no plugin code: napari's own cost
of those layers, the floor under the Quantify time and the event-loop gap.

Usage (needs a display; a virtual one is fine)::

    xvfb-run -a .venv/bin/python benchmarks/bench_napari.py [--clicks 20] [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PLUGIN = "napari-xrfquant"


def pump_until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Run Qt's own event loop until ``condition()`` holds (TimeoutError after ``timeout_s``).

    A ``QEventLoop`` as napari runs one, checked by a 5 ms timer: a Python loop
    around ``processEvents`` held the interpreter between events and slowed the
    worker's quantification by about 0.45 s (1.2-1.3 s against 0.75-0.83 s).
    """
    from qtpy.QtCore import QEventLoop, QTimer

    if condition():
        return
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    timed_out = []

    def check() -> None:
        if condition():
            loop.quit()
        elif time.perf_counter() > deadline:
            timed_out.append(True)
            loop.quit()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if timed_out:
        raise TimeoutError(f"gave up after {timeout_s:.0f} s")


def flush_events(repeats: int = 3) -> None:
    """Let Qt handle pending events (layer repaints, dock layout)."""
    from qtpy.QtWidgets import QApplication

    for _ in range(repeats):
        QApplication.processEvents()


#: Interval of the timer that watches the event loop (ms).
GAP_TIMER_MS = 10


class EventLoopGaps:
    """The longest time between two ticks of a fast Qt timer: how long the window froze."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.longest_s = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(GAP_TIMER_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_s = max(self.longest_s, now - self._last)
        self._last = now

    def stop(self) -> float:
        """Stop watching; the longest gap in ms."""
        self._tick()
        self.timer.stop()
        return self.longest_s * 1e3


def napari_layer_floor(viewer, template, n: int) -> np.ndarray:
    """Seconds napari takes for each of ``n`` plain ``add_image`` calls (layers removed after).

    The images have the shape, scale, offset and units of the result layer ``template``.

    No plugin code runs in them: what any result layer costs at least, which
    bounds both the Quantify-to-layers time and the longest event-loop gap.
    """
    seconds = []
    layers = []
    for index in range(n):
        data = np.random.default_rng(index).random(template.data.shape, dtype=np.float32)
        flush_events()
        t0 = time.perf_counter()
        layers.append(viewer.add_image(
            data, name=f"floor {index}", visible=False, contrast_limits=(0.0, 1.0),
            scale=template.scale, translate=template.translate, units=template.units))
        seconds.append(time.perf_counter() - t0)
    for layer in layers:
        viewer.layers.remove(layer)
    flush_events()
    return np.asarray(seconds)


def plate_pixels(viewer, cube_name: str, n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` distinct pixels on the sample plate (truth label > 0, else well-lit pixels)."""
    truth = [
        lyr for lyr in viewer.layers
        if lyr.metadata.get("kind") == "truth_regions"
        and lyr.metadata.get("source_layer") == cube_name
    ]
    if truth:
        on_plate = np.asarray(truth[0].data) > 0
    else:
        total = next(lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "total_counts")
        counts = np.asarray(total.data, dtype=np.float64)
        on_plate = counts >= 0.1 * np.median(counts)
    rows, cols = np.nonzero(on_plate)
    chosen = np.random.default_rng(seed).choice(rows.size, size=n, replace=False)
    return [(int(rows[i]), int(cols[i])) for i in chosen]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20, help="timed clicks after the first")
    parser.add_argument("--model", type=Path, default=None, help="model bundle (default: bundled)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from napari_xrfquant.sample import sample_cube_path

    SAMPLE = sample_cube_path()
    if not SAMPLE.is_file():
        print(f"bench_napari: {SAMPLE} is missing", file=sys.stderr)
        return 1

    started = time.perf_counter()
    import napari
    import torch

    from napari_xrfquant._napari.launch import freeze_startup_objects

    viewer = napari.Viewer(show=False)
    freeze_startup_objects()  # as `make run` does, before any data
    print(f"napari viewer up in {time.perf_counter() - started:.2f} s "
          f"(napari {napari.__version__}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads)")

    # -- reading the sample into layers ---------------------------------------
    opens = []
    for _ in range(2):  # the first open also imports the plugin's reader and h5py
        for layer in list(viewer.layers):
            viewer.layers.remove(layer)
        t0 = time.perf_counter()
        layers = viewer.open(SAMPLE, plugin=PLUGIN)
        flush_events()
        opens.append(time.perf_counter() - t0)
    cube = layers[0]
    print(f"read sample into {len(viewer.layers)} layers: first {opens[0]:.2f} s, "
          f"again {opens[1]:.2f} s  (cube {cube.data.shape} C x H x W)")

    # -- Quantify through the widget -------------------------------------------
    _, quantify = viewer.window.add_plugin_dock_widget(PLUGIN, "Quantify")
    _, inspector = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectrum inspector")
    if args.model is not None:
        quantify.add_model(args.model)
    quantify.device_combo.setCurrentText("cpu")
    if quantify.load_selected_model(notify=False) is None:
        print(f"bench_napari: no model ({quantify.model_error})", file=sys.stderr)
        return 1
    warm = getattr(inspector, "warm_up_worker", None)
    if warm is not None:  # a user looks at the cube before pressing Quantify
        t0 = time.perf_counter()
        warm.join(timeout=120)
        print(f"inspector warm-up (model run once in the background) ended "
              f"{time.perf_counter() - t0:.2f} s after the docks opened")
    n_before = len(viewer.layers)
    gaps = EventLoopGaps()
    t0 = time.perf_counter()
    worker = quantify.run()
    if worker is None:
        print("bench_napari: Quantify did not start", file=sys.stderr)
        return 1
    pump_until(lambda: quantify.worker is None, timeout_s=600)
    wall_s = time.perf_counter() - t0
    longest_gap_ms = gaps.stop()
    added = len(viewer.layers) - n_before
    if added <= 0:
        print(f"bench_napari: Quantify added no layers ({quantify.status.text()})",
              file=sys.stderr)
        return 1
    result = quantify.maps.last_results[cube.name]
    n_pixels = int(np.prod(np.shape(result.concentrations)[:2]))
    print(f"Quantify via widget: {wall_s:.2f} s until {added} layers exist "
          f"(core quantify {result.seconds:.2f} s, {n_pixels / result.seconds:,.0f} spectra/s; "
          f"GUI + layers {wall_s - result.seconds:.2f} s)")
    print(f"longest gap of the Qt event loop during that run: {longest_gap_ms:.0f} ms "
          f"(a {GAP_TIMER_MS} ms timer)")

    t0 = time.perf_counter()
    quantify.mask_spin.setValue(int(quantify.mask_spin.value()) + 100)
    flush_events()
    print(f"re-mask at a new threshold (no new run): {time.perf_counter() - t0:.3f} s")

    # -- Spectrum inspector clicks -----------------------------------------------
    pixels = plate_pixels(viewer, cube.name, args.clicks + 1, args.seed)
    times = []
    draws = [0]
    inspector.plot.canvas.mpl_connect("draw_event", lambda _e: draws.__setitem__(0, draws[0] + 1))
    for row, col in pixels:
        world = cube.data_to_world((0, row, col))
        flush_events()
        drawn_before = draws[0]
        t0 = time.perf_counter()
        shown = inspector.pick_world(world)
        # the plot the user sees: until Qt has drawn the canvas (draw_idle) once more
        pump_until(lambda before=drawn_before: draws[0] > before, timeout_s=30)
        times.append(time.perf_counter() - t0)
        if shown is None or shown.label != f"pixel ({row}, {col})":
            print(f"bench_napari: click on ({row}, {col}) showed {shown}", file=sys.stderr)
            return 1
    later = np.asarray(times[1:]) * 1e3
    print(f"inspector click (pixel -> drawn plot): first {times[0] * 1e3:.0f} ms; "
          f"next {later.size} on other pixels: median {np.median(later):.0f} ms, "
          f"max {later.max():.0f} ms")
    # -- napari alone: the floor under the two Quantify figures ----------------
    template = next(lyr for lyr in viewer.layers if lyr.metadata.get("kind") == "concentration")
    alone = napari_layer_floor(viewer, template, added)
    print(f"napari alone, {added} add_image of {template.data.shape} float32 "
          f"(hidden, contrast given) into this viewer: {alone.sum():.2f} s, "
          f"median {np.median(alone) * 1e3:.0f} ms, slowest {alone.max() * 1e3:.0f} ms")
    print(f"total {time.perf_counter() - started:.1f} s")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
