"""Measure the bundled model from scratch; write the figures to model.json and docs/.

1. Test set: fresh compositions over the whole simplex (a seed the training never
   used, so none of them was seen), simulated with the physics simulator for the
   model's instrument, both nominal and with the training's instrument jitter;
   MAE per element and 1-sigma coverage, noise-free and at 1e3, 1e4, 1e5 counts.
2. Certified reference materials ERM-EB506/507/508 simulated at 1e5 counts
   (many Poisson draws): certified value against the mean prediction +- the
   model's 1-sigma, per element.

Usage::

    .venv/bin/python scripts/evaluate_bundled_model.py [--model DIR] [--n-test 5000]

Writes ``model.json["metrics"]`` (keeping the training's own test metrics under
``"training_test"``) and ``docs/crm_table.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_xrfquant._files import atomic_path
from napari_xrfquant.models.bundle import load_model, update_metadata
from napari_xrfquant.training.config import JitterConfig
from napari_xrfquant.training.datasets import SimulatorSpectra, sample_compositions, simulate_set
from napari_xrfquant.training.evaluation import evaluate_model

REPO = Path(__file__).resolve().parents[1]

#: BAM gold CRMs, certified mass fractions in wt% (Au, Ag, Cu, Ni, Zn).
CRMS: dict[str, dict[str, float]] = {
    "ERM-EB506 (rose gold)": {"Au": 58.56, "Ag": 3.90, "Cu": 35.65, "Ni": 0.0, "Zn": 1.891},
    "ERM-EB507 (white gold)": {"Au": 75.10, "Ag": 3.02, "Cu": 14.69, "Ni": 4.99, "Zn": 2.107},
    "ERM-EB508 (yellow gold)": {"Au": 75.12, "Ag": 24.90, "Cu": 0.0, "Ni": 0.0, "Zn": 0.0},
}
#: Seed of the fresh test compositions (training seeds are small integers).
TEST_SEED = 20_261_124


def binned_fractions(model: Any, expected: torch.Tensor) -> torch.Tensor:
    """Expected spectra -> the model's input bins, each row summing to 1."""
    binned = model.network.features.bin_counts(expected)
    return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)


def test_metrics(model: Any, n_test: int, jitter: bool) -> dict[str, Any]:
    """Metrics on fresh simulated compositions (nominal or jittered instrument)."""
    rng = np.random.default_rng(TEST_SEED + int(jitter))
    generator = SimulatorSpectra(model.elements, model.instrument)
    wt = sample_compositions(n_test, len(model.elements), 0.3, rng)
    data = simulate_set(generator, wt, JitterConfig() if jitter else None, rng)
    metrics = evaluate_model(
        model, data.wt_percent, binned_fractions(model, data.expected), [1e3, 1e4, 1e5]
    )
    metrics["fit_quality_median"] = fit_quality_medians(model, data.expected, [1e3, 1e4, 1e5])
    setup = "instrument jitter as in training" if jitter else "nominal instrument"
    metrics["description"] = (
        f"{n_test} fresh compositions (seed {TEST_SEED + int(jitter)}, never trained on), "
        f"physics simulator, {setup}"
    )
    return metrics


def fit_quality_medians(
    model: Any, expected: torch.Tensor, count_levels: list[float]
) -> dict[str, float]:
    """Median fit quality of quantify() on Poisson spectra at each count level (1 is ideal)."""
    from napari_xrfquant.inference import quantify

    g = torch.Generator().manual_seed(99)
    medians = {}
    for counts in count_levels:
        spectra = torch.poisson(expected * counts, generator=g).numpy()
        result = quantify(spectra, model=model, device="cpu")
        medians[f"{counts:.0e}"] = float(np.nanmedian(result.fit_quality))
    return medians


def crm_predictions(model: Any, counts: float, draws: int) -> list[dict[str, Any]]:
    """Mean prediction, model sigma and scatter of predictions for each CRM at ``counts``."""
    generator = SimulatorSpectra(model.elements, model.instrument)
    g = torch.Generator().manual_seed(7)
    rows = []
    for name, certified in CRMS.items():
        wt = torch.tensor([[certified[e] for e in model.elements]], dtype=torch.float32)
        wt = 100.0 * wt / wt.sum()
        expected = generator.expected(wt)
        counts_tensor = torch.poisson(expected.expand(draws, -1) * counts, generator=g)
        mean, sigma = model.predict(counts_tensor.numpy())
        rows.append(
            {
                "crm": name,
                "certified": [certified[e] for e in model.elements],
                "predicted": mean.mean(axis=0).tolist(),
                "sigma": np.median(sigma, axis=0).tolist(),
                "scatter": mean.std(axis=0).tolist(),
                "within_1sigma": (np.abs(mean - wt.numpy()) <= sigma).mean(axis=0).tolist(),
            }
        )
    return rows


def crm_markdown(
    model: Any, rows: list[dict[str, Any]], metrics: dict[str, Any], counts: float, draws: int
) -> str:
    """The docs/crm_table.md text."""
    elements = model.elements
    lines = [
        "# Bundled model: accuracy figures",
        "",
        f"Model `{model.model_id}`, measured by `scripts/evaluate_bundled_model.py` on "
        f"{dt.date.today().isoformat()}. All spectra are simulated with the package's physics "
        "simulator for the reference instrument; these are not measurements.",
        "",
        f"## Certified reference materials, simulated at {counts:.0e} counts",
        "",
        f"Mean prediction over {draws} Poisson draws +- the model's median 1-sigma; wt%.",
        "",
        "| CRM | " + " | ".join(elements) + " |",
        "|---|" + "---|" * len(elements),
    ]
    for row in rows:
        lines.append(
            f"| {row['crm']} certified | " + " | ".join(f"{v:.2f}" for v in row["certified"]) + " |"
        )
        lines.append(
            f"| {row['crm']} predicted | "
            + " | ".join(
                f"{p:.2f} +- {s:.2f}" for p, s in zip(row["predicted"], row["sigma"], strict=True)
            )
            + " |"
        )
    mae = np.mean(
        [abs(p - c) for r in rows for p, c in zip(r["predicted"], r["certified"], strict=True)]
    )
    lines += ["", f"Mean absolute deviation from the certified values: {mae:.3f} wt%.", ""]
    for key, title in (
        ("test_nominal", "nominal instrument"),
        ("test_jitter", "with instrument jitter"),
    ):
        test = metrics[key]
        lines += [
            f"## Simulated test set, {title}",
            "",
            test["description"] + ".",
            "",
            "| counts | MAE (wt%) | "
            + " | ".join(f"{e} MAE" for e in elements)
            + " | 1-sigma coverage |",
            "|---|---|" + "---|" * len(elements) + "---|",
        ]
        for label, level in test["levels"].items():
            per = level["mae_per_element"]
            lines.append(
                f"| {label} | {level['mae_wt']:.3f} | "
                + " | ".join(f"{per[e]:.3f}" for e in elements)
                + f" | {100 * level['coverage_1sigma']:.1f} % |"
            )
        medians = ", ".join(f"{k}: {v:.2f}" for k, v in test["fit_quality_median"].items())
        lines += ["", f"Median fit quality (1 = explained by the model): {medians}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundle directory (default: bundled)")
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--crm-counts", type=float, default=1e5)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "crm_table.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    metrics: dict[str, Any] = {
        "test_nominal": test_metrics(model, args.n_test, jitter=False),
        "test_jitter": test_metrics(model, args.n_test, jitter=True),
    }
    rows = crm_predictions(model, args.crm_counts, args.draws)
    metrics["crm"] = {"counts": args.crm_counts, "draws": args.draws, "rows": rows}
    training_test = model.metadata.get("metrics", {}).get("test")
    if training_test is None:
        training_test = model.metadata.get("metrics", {}).get("training_test")
    if training_test is not None:
        metrics["training_test"] = training_test
    text = crm_markdown(model, rows, metrics, args.crm_counts, args.draws)
    print(text)
    if not args.no_write:
        assert model.path is not None
        update_metadata(model.path, {"metrics": metrics})
        with atomic_path(args.doc, overwrite=True) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(f"wrote {model.path / 'model.json'} metrics and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
