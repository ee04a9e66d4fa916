"""``xrfquant watch``: frames quantified as they arrive, never from a half-written file."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tifffile

from napari_xrfquant.campaign import FrameSettings
from napari_xrfquant.campaign.watch import iter_watch
from napari_xrfquant.cli import main
from napari_xrfquant.io import write_cxc_hdf5
from napari_xrfquant.jobs import CancelToken
from napari_xrfquant.models.bundle import load_model

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def cubes(alloy_frames):
    return alloy_frames[:3]


def _write_slowly(path, cube, pause_s):
    """An .npy written in two halves with a pause between: half a file for ``pause_s``."""
    payload = cube.tobytes()
    header = np.lib.format.header_data_from_array_1_0(cube)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(payload[: len(payload) // 2])
        handle.flush()
        time.sleep(pause_s)
        handle.write(payload[len(payload) // 2 :])


def test_three_frames_one_written_slowly(cubes, tmp_path, monkeypatch):
    from napari_xrfquant.campaign import watch

    attempts = []
    real = watch.quantify_frame

    def counted(path, *args, **kwargs):
        outcome = real(path, *args, **kwargs)
        attempts.append((path.name, outcome.status))
        return outcome

    monkeypatch.setattr(watch, "quantify_frame", counted)
    model = load_model()
    incoming, out = tmp_path / "incoming", tmp_path / "out"
    incoming.mkdir()

    def camera():
        # paused longer than settle_s: size-stable but unreadable for a while
        _write_slowly(incoming / "frame_02.npy", cubes[2], pause_s=2.0)
        np.save(incoming / "frame_00.npy", cubes[0])
        write_cxc_hdf5(incoming / "frame_01.h5", cubes[1], model.energy_keV)

    writer = threading.Thread(target=camera)
    writer.start()
    outcomes = []
    deadline = time.monotonic() + 120
    settings = FrameSettings(device="cpu")
    stop = CancelToken()
    for outcome in iter_watch(incoming, out, settings, model=model, poll_s=0.1, settle_s=0.4,
                              give_up_s=20, cancel=stop):
        if outcome is not None:
            outcomes.append(outcome)
        if len(outcomes) >= 3 or time.monotonic() > deadline:
            stop.cancel()
    writer.join()
    assert [o.status for o in outcomes] == ["done"] * 3
    # the half-written file was tried while size-stable, refused, and done once complete
    assert ("frame_02.npy", "failed") in attempts
    assert attempts.count(("frame_02.npy", "done")) == 1
    assert sorted(o.stem for o in outcomes) == ["frame_00", "frame_01", "frame_02"]
    import napari_xrfquant as xq

    for i, cube in enumerate(cubes):  # each from the whole file: equal to the cube itself
        expected = xq.quantify(cube, model=model, device="cpu").concentrations
        maps = tifffile.imread(out / f"frame_{i:02d}_wt_percent.tif")
        np.testing.assert_allclose(np.moveaxis(maps, 0, -1), expected, atol=1e-4)
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 3 * len(ELEMENTS)


def test_cli_watch_once_and_restart(cubes, tmp_path, capsys):
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    np.save(incoming / "a.npy", cubes[0])
    np.save(incoming / "b.npy", cubes[1])
    (incoming / ".b.npy.part").write_bytes(b"a writer's temporary file")
    argv = ["watch", str(incoming), "-o", str(out), "--once", "--settle", "0",
            "--poll", "0.05", "--device", "cpu"]
    assert main(argv) == 0
    assert "2 frames quantified, 0 failed" in capsys.readouterr().out
    assert (out / "a_wt_percent.tif").exists() and (out / "b_wt_percent.tif").exists()
    np.save(incoming / "c.npy", cubes[2])
    assert main(argv) == 0  # a restart: a and b done before, c new
    out_text = capsys.readouterr().out
    assert "a.npy: done before" in out_text and "1 frames quantified" in out_text


def test_an_unreadable_file_is_reported_once(tmp_path, capsys):
    incoming = tmp_path / "in"
    incoming.mkdir()
    (incoming / "broken.npy").write_bytes(b"\x93NUMPY not really")
    argv = ["watch", str(incoming), "-o", str(tmp_path / "out"), "--once", "--settle", "0",
            "--give-up", "0", "--poll", "0.05"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.npy" in err[0]


def test_watch_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["watch", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
