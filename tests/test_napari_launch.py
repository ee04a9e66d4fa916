"""`python -m napari_xrfquant._napari.launch` and `scripts/run.sh` without a display."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from test_napari_fixtures import REPO, write_tiny_cxc


def test_exit_after_seconds_parses_the_environment(monkeypatch) -> None:
    from napari_xrfquant._napari.launch import EXIT_AFTER_ENV, exit_after_seconds
    from napari_xrfquant.errors import XRFQuantError

    monkeypatch.delenv(EXIT_AFTER_ENV, raising=False)
    assert exit_after_seconds() is None
    monkeypatch.setenv(EXIT_AFTER_ENV, "2.5")
    assert exit_after_seconds() == 2.5
    monkeypatch.setenv(EXIT_AFTER_ENV, "soon")
    with pytest.raises(XRFQuantError, match="soon"):
        exit_after_seconds()


def test_launch_opens_the_sample_with_both_widgets_docked(
    qtbot, tmp_path, monkeypatch
) -> None:
    from napari_xrfquant._napari.launch import build_viewer
    from napari_xrfquant._napari.widgets.inspector import SpectrumInspector
    from napari_xrfquant._napari.widgets.quantify import QuantifyWidget
    from napari_xrfquant.sample import SAMPLE_ENV

    monkeypatch.setenv(SAMPLE_ENV, str(write_tiny_cxc(tmp_path / "sample.h5")))
    viewer, quantify, inspector = build_viewer(show=False)
    try:
        assert isinstance(quantify, QuantifyWidget)
        assert isinstance(inspector, SpectrumInspector)
        assert "cxc_gold_sample" in viewer.layers
        assert quantify.cube_combo.currentText() == "cxc_gold_sample"
        docked = set(viewer.window.dock_widgets)
        assert {"Quantify (napari-xrfquant)", "Spectrum inspector (napari-xrfquant)"} <= docked
    finally:
        viewer.close()


def fake_repo(tmp_path: Path, quantify_exists: bool) -> Path:
    """A copy of scripts/run.sh beside a stub ``.venv/bin/xrfquant`` that logs its arguments."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "run.sh"
    script.write_text((REPO / "scripts" / "run.sh").read_text())
    stub = tmp_path / ".venv" / "bin" / "xrfquant"
    stub.parent.mkdir(parents=True)
    help_status = 0 if quantify_exists else 2
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$2" = "--help" ]; then exit {help_status}; fi\n'
        'if [ "$1" = "sample" ]; then echo /cache/cxc_gold_sample.h5; exit 0; fi\n'
        'echo "$@" >> "$(dirname "$0")/calls.log"\n'
    )
    stub.chmod(0o755)
    return script


@pytest.mark.parametrize("quantify_exists", [True, False])
def test_run_script_without_display_says_so_and_runs_the_cli(tmp_path, quantify_exists) -> None:
    script = fake_repo(tmp_path, quantify_exists)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "headless CLI" in lines[0]
    calls = (tmp_path / ".venv" / "bin" / "calls.log").read_text().strip()
    if quantify_exists:
        expected = "quantify /cache/cxc_gold_sample.h5 -o out/sample --preview --overwrite"
        assert calls == expected
    else:
        assert calls == "info /cache/cxc_gold_sample.h5"
    assert (REPO / "scripts" / "run.sh").stat().st_mode & 0o111
