"""The record of a campaign's output folder: which frames are done, from what, and how.

``xrfquant-manifest.json`` in the output folder lists every finished frame with
the fingerprint of its source file (resolved path, size, modification time),
the key of the settings and model that made it (:func:`~.frames.settings_key`),
its files and its whole-map statistics. It is written atomically by the one
process that gathers the frames, after each frame, so a campaign stopped at any
point resumes where it was: a frame whose record matches its file and settings,
and whose files are all there, is skipped. ``summary.csv`` is made from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from napari_xrfquant.errors import XRFQuantError

MANIFEST_FILE = "xrfquant-manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class SourceFingerprint:
    """What identifies a source file's content cheaply: resolved path, size, mtime."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> SourceFingerprint:
        """The fingerprint of ``path`` as it is now."""
        resolved = Path(path).resolve()
        stat = resolved.stat()
        return cls(str(resolved), int(stat.st_size), int(stat.st_mtime_ns))


@dataclass
class FrameRecord:
    """One finished frame in the manifest."""

    source: SourceFingerprint
    settings_key: str
    files: list[str]
    statistics: list[dict[str, Any]] = field(default_factory=list)

    def is_current(self, source: SourceFingerprint, key: str, folder: Path) -> bool:
        """True when made from this very file with these settings, and every file is there."""
        return (
            self.source == source
            and self.settings_key == key
            and all((folder / name).exists() for name in self.files)
        )


@dataclass
class Manifest:
    """All finished frames of an output folder, by output stem."""

    folder: Path
    frames: dict[str, FrameRecord] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where the manifest lives."""
        return self.folder / MANIFEST_FILE

    def save(self) -> None:
        """Write the manifest atomically (a reader never sees half of it)."""
        from napari_xrfquant._files import atomic_path

        payload = {
            "version": MANIFEST_VERSION,
            "frames": {stem: asdict(record) for stem, record in self.frames.items()},
        }
        with atomic_path(self.path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")


def load_manifest(folder: str | os.PathLike[str]) -> Manifest | None:
    """The manifest of ``folder``; None when it has none.

    Raises
    ------
    XRFQuantError
        For a manifest that is not one (hand-edited, or another program's file).
    """
    target = Path(folder)
    path = target / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        frames = {
            stem: FrameRecord(
                SourceFingerprint(**record["source"]),
                str(record["settings_key"]),
                [str(name) for name in record["files"]],
                list(record.get("statistics", [])),
            )
            for stem, record in payload["frames"].items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise XRFQuantError(f"{path}: not a campaign manifest ({exc}); move it away") from None
    if payload.get("version") != MANIFEST_VERSION:
        raise XRFQuantError(f"{path}: manifest version {payload.get('version')} is not "
                            f"{MANIFEST_VERSION}; use another output folder")
    return Manifest(target, frames)


__all__ = ["MANIFEST_FILE", "FrameRecord", "Manifest", "SourceFingerprint", "load_manifest"]
