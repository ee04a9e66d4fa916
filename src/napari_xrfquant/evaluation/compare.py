"""k-fold cross-validation of models on labelled spectra, and its report.

Folds come from scikit-learn's ``KFold`` (shuffled, seeded). For every model
and element the report holds the mean of the fold MSEs and MAEs (wt%), the
standard error ``SE = sd(fold MSEs) / sqrt(k)`` (sample sd), and which model
has the lowest MSE. :func:`write_report` writes ``report.md``, ``report.json``
and one bar chart per element.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.evaluation.baselines import MODEL_NAMES, line_window, make_model
from napari_xrfquant.jobs import Progress, drive


def fold_indices(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index arrays of ``folds`` shuffled folds over ``n`` spectra.

    Raises
    ------
    XRFQuantError
        For fewer spectra than folds, or fewer than two folds.
    """
    from sklearn.model_selection import KFold

    if folds < 2:
        raise XRFQuantError(f"{folds} folds: cross-validation needs at least 2")
    if n < folds:
        raise XRFQuantError(f"{n} labelled spectra are fewer than the {folds} folds")
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(np.zeros(n))]


def standard_error(values: Sequence[float] | np.ndarray) -> float:
    """``sd(values) / sqrt(len(values))`` with the sample sd (ddof = 1)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else math.nan


@dataclass
class ModelScores:
    """One model's fold errors: ``mse[fold, element]`` and ``mae[fold, element]`` (wt%)."""

    name: str
    mse: np.ndarray
    mae: np.ndarray
    pretrained: str | None
    seconds: float

    def per_element(self, elements: Sequence[str]) -> dict[str, dict[str, float]]:
        return {
            element: {
                "mse": float(self.mse[:, i].mean()),
                "se": standard_error(self.mse[:, i]),
                "mae": float(self.mae[:, i].mean()),
            }
            for i, element in enumerate(elements)
        }


@dataclass
class Comparison:
    """The cross-validation of several models on one labelled set."""

    folds: int
    elements: list[str]
    scores: dict[str, ModelScores] = field(default_factory=dict)
    n_spectra: int = 0
    seed: int = 0

    def best(self) -> dict[str, str]:
        """The model with the lowest mean MSE on each element."""
        return {
            element: min(self.scores, key=lambda m: float(self.scores[m].mse[:, i].mean()))
            for i, element in enumerate(self.elements)
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` record."""
        return {
            "folds": self.folds,
            "elements": list(self.elements),
            "n_spectra": self.n_spectra,
            "seed": self.seed,
            "models": {
                name: {
                    "mean_mse": float(s.mse.mean()),
                    "pretrained": s.pretrained,
                    "seconds": round(s.seconds, 2),
                    "per_element": s.per_element(self.elements),
                }
                for name, s in self.scores.items()
            },
            "best": self.best(),
        }


def read_labelled(path: str | Path) -> tuple[Any, Any]:
    """A labelled training-set file and the instrument it records (None when it does not).

    Raises
    ------
    XRFQuantError
        For a file that is no labelled set (:func:`~napari_xrfquant.io.spectra.read_spectra_set`)
        or whose instrument text is not valid.
    """
    import tomllib

    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.io.spectra import read_spectra_set

    data = read_spectra_set(path)
    if not data.instrument:
        return data, None
    try:
        return data, Instrument.from_dict(tomllib.loads(data.instrument), where=str(path))
    except tomllib.TOMLDecodeError as exc:
        raise XRFQuantError(f"{Path(path).name}: its instrument is not TOML ({exc})") from None


def check_labelled(
    counts: np.ndarray, wt_percent: np.ndarray, energy_keV: np.ndarray, elements: Sequence[str],
    models: Sequence[str], folds: int, instrument: Any = None,
) -> None:
    """Refuse what cannot be cross-validated, before any work.

    Raises
    ------
    XRFQuantError
        For NaN labels, an unknown model, fewer spectra than folds, or an
        element whose line lies outside the spectra (the LR window).
    """
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise XRFQuantError(f"unknown model {unknown[0]!r} (known: {', '.join(MODEL_NAMES)})")
    if not np.all(np.isfinite(wt_percent)):
        row = int(np.argwhere(~np.isfinite(wt_percent))[0][0])
        raise XRFQuantError(f"the labels hold NaN or infinite values (spectrum {row})")
    if len(counts) != len(wt_percent):
        raise XRFQuantError(f"{len(counts)} spectra but {len(wt_percent)} labels")
    fold_indices(len(counts), folds)
    for element in elements:
        line_window(element, energy_keV, instrument)


def iter_compare(
    counts: np.ndarray,
    wt_percent: np.ndarray,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    models: Sequence[str] = MODEL_NAMES,
    folds: int = 10,
    seed: int = 0,
    instrument: Any = None,
    mlp_model: Any = None,
    unlabelled: np.ndarray | None = None,
) -> Generator[Progress, None, Comparison]:
    """Cross-validate ``models``; yields a :class:`Progress` per model and fold.

    Parameters
    ----------
    counts, wt_percent
        Labelled spectra ``(N, C)`` and their compositions ``(N, E)`` (wt%).
    energy_keV
        The spectra's channel energies.
    elements
        The columns of ``wt_percent``.
    models
        Names from :data:`~.baselines.MODEL_NAMES`.
    folds, seed
        k and the shuffling seed.
    instrument
        The set-up (the LR windows' resolution and which lines are excited);
        default the reference instrument.
    mlp_model
        The pre-trained model ``mlp`` and ``axs`` fine-tune (default: the bundled one).
    unlabelled
        ``(M, C)`` unlabelled spectra on the same channels, which ``axs`` also
        reconstructs.
    """
    counts = np.asarray(counts, dtype=np.float64)
    wt = np.asarray(wt_percent, dtype=np.float64)
    energy = np.asarray(energy_keV, dtype=np.float64)
    check_labelled(counts, wt, energy, elements, models, folds, instrument)
    if unlabelled is not None and np.shape(unlabelled)[1:] != counts.shape[1:]:
        raise XRFQuantError(
            f"the unlabelled spectra have {np.shape(unlabelled)[1:]} channels, the labelled "
            f"{counts.shape[1:]}: give them on the same channels"
        )
    splits = fold_indices(len(counts), folds, seed)
    comparison = Comparison(folds, list(elements), n_spectra=len(counts), seed=seed)
    total, done = len(models) * folds, 0
    for name in models:
        started = time.perf_counter()
        mse = np.zeros((folds, len(elements)))
        mae = np.zeros((folds, len(elements)))
        pretrained = None
        for k, (train, test) in enumerate(splits):
            model = make_model(name, energy, elements, instrument, seed + k, mlp_model,
                               unlabelled)
            model.fit(counts[train], wt[train])
            error = model.predict(counts[test]) - wt[test]
            mse[k], mae[k] = (error**2).mean(axis=0), np.abs(error).mean(axis=0)
            pretrained = model.pretrained
            done += 1
            yield Progress(done, total, f"compare {name}")
        comparison.scores[name] = ModelScores(
            name, mse, mae, pretrained, time.perf_counter() - started
        )
    return comparison


def compare(*args: Any, progress: Callable[[Progress], Any] | None = None,
            **kwargs: Any) -> Comparison:
    """:func:`iter_compare` run to the end (``progress`` gets every event)."""
    return drive(iter_compare(*args, **kwargs), progress)


# -- the report -------------------------------------------------------------------
def report_markdown(comparison: Comparison) -> str:
    """``report.md``: MSE +- SE per element and model (the best in bold), and "best on"."""
    record = comparison.to_dict()
    best = record["best"]
    names = list(record["models"])
    lines = [
        f"# Cross-validation: {comparison.folds} folds, {comparison.n_spectra} labelled spectra",
        "",
        "MSE +- SE (wt%^2) per element, the mean of the fold MSEs with SE = sd / sqrt(k); "
        "MAE in wt% below. Bold: the lowest MSE.",
        "",
        "| element | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for element in comparison.elements:
        cells = []
        for name in names:
            entry = record["models"][name]["per_element"][element]
            text = f"{entry['mse']:.3g} +- {entry['se']:.2g}"
            cells.append(f"**{text}**" if best[element] == name else text)
        lines.append(f"| {element} | " + " | ".join(cells) + " |")
    lines += ["", "| element | " + " | ".join(f"MAE {n}" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for element in comparison.elements:
        cells = [f"{record['models'][n]['per_element'][element]['mae']:.3g}" for n in names]
        lines.append(f"| {element} | " + " | ".join(cells) + " |")
    lines += ["", "## Best on", "", "| model | elements |", "|---|---|"]
    for name in names:
        won = [e for e in comparison.elements if best[e] == name]
        lines.append(f"| {name} | {', '.join(won) or '-'} |")
    lines += ["", "## Models", ""]
    for name in names:
        entry = record["models"][name]
        start = f"pre-trained: {entry['pretrained']}" if entry["pretrained"] else "from scratch"
        lines.append(f"- {name}: {start}; {entry['seconds']:.1f} s for all folds")
    return "\n".join(lines) + "\n"


def write_report(outdir: str | Path, comparison: Comparison, overwrite: bool = False) -> list[Path]:
    """Write ``report.md``, ``report.json`` and ``mse_<element>.png`` into ``outdir``.

    Raises
    ------
    FileExistsError
        If a report is there and ``overwrite`` is False (then nothing is written).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from napari_xrfquant._files import atomic_path

    folder = Path(outdir)
    targets = [folder / "report.md", folder / "report.json",
               *(folder / f"mse_{e}.png" for e in comparison.elements)]
    if not overwrite:
        clash = [p for p in targets if p.exists()]
        if clash:
            raise FileExistsError(f"{clash[0]}: exists; use --overwrite to replace the report")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(targets[0], overwrite=overwrite) as tmp:
        tmp.write_text(report_markdown(comparison), encoding="utf-8")
    with atomic_path(targets[1], overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(comparison.to_dict(), indent=1) + "\n", encoding="utf-8")
    record = comparison.to_dict()
    names = list(record["models"])
    for element, target in zip(comparison.elements, targets[2:], strict=True):
        figure = Figure(figsize=(4.5, 3.0), dpi=100)
        axes = figure.add_subplot()
        entries = [record["models"][n]["per_element"][element] for n in names]
        axes.bar(names, [e["mse"] for e in entries], yerr=[e["se"] for e in entries],
                 capsize=4, color="tab:blue")
        axes.set_ylabel("MSE (wt%$^2$)")
        axes.set_title(f"{element}: {comparison.folds}-fold MSE ± SE")
        figure.tight_layout()
        with atomic_path(target, overwrite=overwrite) as tmp:
            figure.savefig(tmp, format="png")
    return targets
