"""The day's drift page: churnops' own verdicts first, evidently's plots below as a secondary view.

The churnops section is rendered from the record in ``feature_drift.json`` (the verdicts the
decision was taken on, with the thresholds they were judged by) and from the day's report, so
the page shows exactly what the JSON and the decision say. Evidently draws the distributions:
it runs churnops' own tests and drift rule, registered as evidently stat tests, on the page's
seeded samples, under a heading that marks it secondary and says where it can still differ.
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.config import MonitoringConfig
from churnops.data import write_text_atomically
from churnops.features import MISSING
from churnops.monitoring.drift import categorical_drift, is_drifted, numeric_drift
from churnops.monitoring.sampling import as_numeric, capped_pair, category_label

__all__ = ["EvidentlyView", "drift_report_html", "evidently_view", "render_page", "verdict_section"]

TEST_NAMES = {"ks": "Kolmogorov–Smirnov", "chi2_contingency": "chi-square contingency"}
EFFECT_NAMES = {"ks": "KS statistic", "chi2_contingency": "Cramér's V"}

_STYLE = """<style>
#churnops{font-family:sans-serif;font-size:14px;padding:8px 16px}
#churnops table{border-collapse:collapse}
#churnops th,#churnops td{border:1px solid #ccc;padding:2px 8px;text-align:left}
#churnops tr.drifted{background:#fde2e1}
#churnops-secondary{font-family:sans-serif;font-size:14px;padding:8px 16px;background:#fff3cd}
</style>"""


_REGISTERED: set[str] = set()
"""Names of the churnops stat tests registered with evidently in this process."""


@dataclass
class EvidentlyView:
    """Evidently's part of the page and what it was computed on.

    Attributes:
        page: evidently's whole HTML document, or None when a side had no rows.
        n_reference: reference rows of its sample.
        n_current: current rows of its sample.
        not_shown: numeric columns left out because one side has no value in them.
        drifted: columns evidently found drifted on its sample (None without a page).
        columns: columns evidently judged.
    """

    page: str | None
    n_reference: int
    n_current: int
    not_shown: list[str] = field(default_factory=list)
    drifted: int | None = None
    columns: int = 0


def _text(text: str) -> str:
    # Element content: <, > and & must be escaped, quotes need not be (attributes use quote=True).
    return html.escape(text, quote=False)


def _cell(name: str, value: Any, text: str) -> str:
    # The exact JSON value rides along in data-value, so a reader (or a test) can compare it
    # with feature_drift.json without parsing the rounded text.
    value_attr = html.escape(json.dumps(value), quote=True)
    return f'<td data-field="{name}" data-value="{value_attr}">{_text(text)}</td>'


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _feature_row(row: dict[str, Any], thresholds: dict[str, Any]) -> str:
    test = row["test"]
    rule = {"p_value": thresholds["p_value"], "min_effect_size": thresholds["min_effect_size"]}
    sizes = row["sample_size"]
    cells = [
        _cell("feature", row["feature"], row["feature"]),
        _cell("kind", row["kind"], row["kind"]),
        _cell("test", test, TEST_NAMES.get(test, test)),
        _cell("statistic", row["statistic"], f"{row['statistic']:.4g}"),
        _cell("p_value", row["p_value"], f"{row['p_value']:.3g}"),
        _cell("effect_size", row["effect_size"], f"{row['effect_size']:.4f} ({EFFECT_NAMES.get(test, 'effect')})"),
        _cell("threshold", rule, f"p < {rule['p_value']:g} and effect > {rule['min_effect_size']:g}"),
        _cell("drifted", row["drifted"], _yes(row["drifted"])),
        _cell("sample_size", sizes, f"{sizes['reference']} / {sizes['current']}"),
        _cell(
            "null_fraction",
            [row["reference_null_fraction"], row["current_null_fraction"]],
            f"{row['reference_null_fraction']:.3f} / {row['current_null_fraction']:.3f}",
        ),
    ]
    css = ' class="drifted"' if row["drifted"] else ""
    return f'<tr data-feature="{html.escape(row["feature"], quote=True)}"{css}>{"".join(cells)}</tr>'


def _items(css: str, title: str, lines: list[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{_text(line)}</li>" for line in lines)
    return f'<p>{_text(title)}</p><ul class="{css}">{items}</ul>'


def verdict_section(verdicts: dict[str, Any], report: dict[str, Any]) -> str:
    """churnops' verdict of the day: the decision, the dataset verdict and one row per feature.

    Args:
        verdicts: the record in ``feature_drift.json`` (``features``, the dataset verdict, ``thresholds``).
        report: the day's report (:func:`~churnops.monitoring.report.build_report`): date, model
            version, rows, decision, reasons and notes, the estimated ROC-AUC (:func:`estimate_paragraph`).

    Returns:
        An HTML ``<section id="churnops">``; every figure of the table carries its exact JSON
        value in a ``data-value`` attribute next to the rounded text.
    """
    thresholds = verdicts["thresholds"]
    drifted = verdicts["drifted_features"]
    header = ["feature", "kind", "test", "statistic", "p-value", "effect size", "drifted when", "drifted"]
    header += ["rows compared (reference / current)", "missing share (reference / current)"]
    rows = "".join(_feature_row(row, thresholds) for row in verdicts["features"])
    title = f"churnops drift report of {report['date']}: model version {report['model_version']}, {report['rows']} rows"
    return (
        f'<section id="churnops" data-role="verdict">{_STYLE}'
        f"<h1>{_text(title)}</h1>"
        f'<p>Decision: <strong data-field="decision">{_text(report["decision"])}</strong>'
        " (these verdicts decide; evidently's view further down is secondary)</p>"
        f"{_items('reasons', 'Because of:', report['reasons'])}{_items('notes', 'Notes:', report['notes'])}"
        f"{estimate_paragraph(report)}"
        f'<p>Dataset drift: <strong data-field="dataset_drift" data-value="{json.dumps(verdicts["dataset_drift"])}">'
        f"{_yes(verdicts['dataset_drift'])}</strong>: "
        f'<span data-field="n_drifted">{len(drifted)}</span> of '
        f'<span data-field="n_features">{verdicts["n_features"]}</span> features drifted '
        f"(share {verdicts['drift_share']:.3f}; the dataset drifts when the share exceeds "
        f"{thresholds['drifted_feature_share']:g}).</p>"
        f'<table id="feature-verdicts"><thead><tr>{"".join(f"<th>{h}</th>" for h in header)}</tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _figure(name: str, value: Any) -> str:
    value_attr = html.escape(json.dumps(value), quote=True)
    return f'<span data-field="{name}" data-value="{value_attr}">{"-" if value is None else f"{value:.4f}"}</span>'


def estimate_paragraph(report: dict[str, Any]) -> str:
    """The day's estimated ROC-AUC (no labels needed) with its band and whether it is trusted.

    Args:
        report: the day's report (``estimated_roc_auc``, ``estimated_roc_auc_low``,
            ``estimated_roc_auc_high``, ``estimate_trusted``).

    Returns:
        An HTML ``<p id="churnops-estimate">``, or nothing when the report holds no estimate.
    """
    if report.get("estimated_roc_auc") is None:
        return ""
    trusted = bool(report.get("estimate_trusted"))
    return (
        '<p id="churnops-estimate">Estimated ROC-AUC from the scores alone (no labels; assumes calibrated scores): '
        f"{_figure('estimated_roc_auc', report['estimated_roc_auc'])} "
        f"(95% band {_figure('estimated_roc_auc_low', report.get('estimated_roc_auc_low'))} to "
        f"{_figure('estimated_roc_auc_high', report.get('estimated_roc_auc_high'))}); "
        f'trusted: <strong data-field="estimate_trusted" data-value="{json.dumps(trusted)}">{_yes(trusted)}</strong>'
        f"{'' if trusted else ' (not trusted: never a retraining trigger; the notes say why)'}."
        " It cannot see concept drift: when the relation between features and churn changes, it stays put"
        " while the realized ROC-AUC falls.</p>"
    )


def _secondary_heading(view: EvidentlyView, verdicts: dict[str, Any]) -> str:
    rule = verdicts["thresholds"]
    title = "Evidently's view (secondary: for browsing the distributions; the table above decides)"
    if view.page is None:
        text = (
            f"No evidently view: the reference has {view.n_reference} rows and the current data "
            f"{view.n_current} rows in its sample, and evidently refuses empty data."
        )
    else:
        text = (
            f"It runs churnops' tests and rule (p < {rule['p_value']:g} and effect > {rule['min_effect_size']:g}) "
            f"on seeded samples of {view.n_reference} reference and {view.n_current} current rows, so it can "
            "differ from the table where churnops sees more rows: its chi-square counts every row of both "
            "sides, its KS tests draw their own sample of a day larger than the sample size. Evidently calls "
            f"the dataset drifted at a share of at least {rule['drifted_feature_share']:g}, churnops only above it. "
            f"Here evidently finds {view.drifted} of {view.columns} columns drifted, churnops "
            f"{len(verdicts['drifted_features'])} of {verdicts['n_features']}."
        )
        if view.not_shown:
            text += f" Not shown by evidently (no value on one side): {', '.join(view.not_shown)}."
    return f'<div id="churnops-secondary" data-role="secondary"><h2>{_text(title)}</h2><p>{_text(text)}</p></div>'


def render_page(verdicts: dict[str, Any], report: dict[str, Any], view: EvidentlyView, header: str = "") -> str:
    """The whole page: ``header``, churnops' section, then evidently's part under its secondary heading.

    Args:
        verdicts: the record in ``feature_drift.json``.
        report: the day's report.
        view: :func:`evidently_view`'s result.
        header: HTML put first in the body (the history chart's link).

    Returns:
        The HTML document.
    """
    ours = header + verdict_section(verdicts, report) + _secondary_heading(view, verdicts)
    if view.page is None:
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>churnops drift</title></head>"
            f"<body>{ours}</body></html>"
        )
    head, sep, rest = view.page.partition("<body>")
    return head + sep + ours + rest if sep else ours + view.page


def _churnops_stattests(monitoring: MonitoringConfig) -> tuple[str, str]:
    """Register churnops' KS and chi-square contingency tests, judged by its rule, with evidently.

    Returns:
        The tests' names for numeric and categorical columns. The thresholds are part of the
        names: evidently's registry is global, and a test must not be judged by another
        configuration's thresholds.
    """
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def judged(test: Callable[[pd.Series, pd.Series], dict]) -> Callable[..., tuple[float, bool]]:
        # Evidently hands over its threshold (the p-value one); churnops' rule needs the effect size too.
        def run(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float) -> tuple[float, bool]:
            stats = test(reference, current)
            return stats["p_value"], is_drifted(stats, monitoring)

        return run

    suffix = f"p{monitoring.p_value:g}_effect{monitoring.min_effect_size:g}"
    names = f"churnops_ks_{suffix}", f"churnops_chi2_contingency_{suffix}"
    if names[0] in _REGISTERED:  # a long-lived worker writes many pages: register each rule once
        return names
    for name, label, kind, test in (
        (names[0], "churnops KS p-value", ColumnType.Numerical, numeric_drift),
        (names[1], "churnops chi-square contingency p-value", ColumnType.Categorical, categorical_drift),
    ):
        register_stattest(StatTest(name, label, [kind], monitoring.p_value), judged(test))
    _REGISTERED.add(names[0])
    return names


def evidently_view(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    monitoring: MonitoringConfig,
) -> EvidentlyView:
    """Evidently's (0.7) data-drift preset on capped samples, run with churnops' tests and rule.

    The samples are drawn by :func:`~churnops.monitoring.sampling.capped_pair` with
    ``monitoring.sample_size`` and ``monitoring.seed``. Every column is judged by churnops' own
    test (KS or chi-square contingency) and rule (p-value and effect size), so on the same rows
    evidently's verdicts are churnops'; its dataset drift uses ``drifted_feature_share``.

    Args:
        reference: reference rows.
        current: current rows.
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        monitoring: sample size, seed and thresholds.

    Returns:
        The view; without a page when a side has no rows, since evidently refuses empty data.
    """
    columns = list(numeric) + list(categorical)
    ref, cur = capped_pair(reference, current, monitoring.sample_size, monitoring.seed, columns)
    ref, cur = _evidently_frame(ref, numeric, categorical), _evidently_frame(cur, numeric, categorical)
    if ref.empty or cur.empty:
        return EvidentlyView(None, len(ref), len(cur))

    # Evidently raises on a numeric column without any value on one side; such a column is
    # named under the secondary heading instead (churnops' own test reports it with p-value 1).
    empty = [c for c in numeric if ref[c].isna().all() or cur[c].isna().all()]
    kept_numeric = [c for c in numeric if c not in empty]

    # Importing evidently takes seconds and pulls its UI stack (which emits deprecation warnings).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    num_method, cat_method = _churnops_stattests(monitoring)
    definition = DataDefinition(numerical_columns=kept_numeric, categorical_columns=list(categorical))
    kept = kept_numeric + list(categorical)
    preset = DataDriftPreset(
        columns=kept,
        num_method=num_method,
        cat_method=cat_method,
        threshold=monitoring.p_value,
        drift_share=monitoring.drifted_feature_share,
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(cur[kept], data_definition=definition),
        Dataset.from_pandas(ref[kept], data_definition=definition),
    )
    counted = [
        m["value"]["count"] for m in snapshot.dict()["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount")
    ]
    return EvidentlyView(
        snapshot.get_html_str(as_iframe=False),
        len(ref),
        len(cur),
        empty,
        int(counted[0]) if counted else None,
        len(kept),
    )


def _evidently_frame(frame: pd.DataFrame, numeric: Iterable[str], categorical: Iterable[str]) -> pd.DataFrame:
    # Give Evidently the values churnops tests: parsed numbers, and categories as text with
    # MISSING for nulls (Evidently would otherwise drop missing categoricals).
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = as_numeric(frame[column])
    for column in categorical:
        # Normalise the distinct values, not every row; code -1 (null) picks the trailing MISSING.
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        labels = np.array([category_label(value) for value in uniques] + [MISSING], dtype=object)
        out[column] = labels[codes]
    return out.reset_index(drop=True)


def drift_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: Path,
    verdicts: dict[str, Any],
    report: dict[str, Any],
    monitoring: MonitoringConfig,
    header: str = "",
    computed: Callable[[list[str], list[str]], EvidentlyView | None] | None = None,
) -> Path:
    """Write the day's drift page: churnops' verdicts (from ``verdicts``), then evidently's view.

    Args:
        reference: reference rows.
        current: the current rows the page samples (the shards' page sample).
        path: the HTML file to write (parent folders are created).
        verdicts: the record in ``feature_drift.json``; its features name the columns.
        report: the day's report.
        monitoring: sample size, seed and thresholds of evidently's view.
        header: HTML put first in the page's body (the history chart's link).
        computed: gives the view already computed elsewhere for the page's numeric and
            categorical columns (:meth:`~churnops.monitoring.page_worker.PageWorker.result`),
            or None to compute it here.

    Returns:
        ``path``.
    """
    numeric = [row["feature"] for row in verdicts["features"] if row["kind"] == "numeric"]
    categorical = [row["feature"] for row in verdicts["features"] if row["kind"] == "categorical"]
    view = computed(numeric, categorical) if computed is not None else None
    if view is None:
        view = evidently_view(reference, current, numeric, categorical, monitoring)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Snapshot.save_html silently writes nothing when given a Path (it only handles str),
    # so the page is rendered and written here.
    write_text_atomically(path, render_page(verdicts, report, view, header))
    return path
