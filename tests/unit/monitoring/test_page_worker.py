"""churnops.monitoring.page_worker: evidently's part of the page computed in a child process."""

from __future__ import annotations

import os
import re
import signal
import time
import warnings

import pytest

from churnops.monitoring.page_worker import PageWorker
from churnops.monitoring.report_page import drift_report_html, evidently_view
from tests.unit.monitoring.test_report_page import CATEGORICAL, NUMERIC, _telco_like, verdicts_and_report

# Evidently names every widget and its script variable afresh (time-based uuids), so two
# renderings of the same view differ in those names only.
_FRESH_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|metric_[0-9a-f]{32}")


def _same_but_ids(page: str) -> str:
    return _FRESH_IDS.sub("<id>", page)


def test_the_child_computes_the_view_evidently_view_computes_in_process(monitoring):
    # Both sides are cut down by the seeded samples, so the child must be given the very rows drawn here.
    settings = monitoring(sample_size=300, seed=7)
    reference, current = _telco_like(600, 0), _telco_like(500, 1, shift=1.5)
    with PageWorker(settings) as worker:
        worker.submit(reference, current, NUMERIC, CATEGORICAL)
        remote = worker.result(NUMERIC, CATEGORICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        local = evidently_view(reference, current, NUMERIC, CATEGORICAL, settings)
    assert remote is not None and local.page is not None and remote.page is not None
    assert (
        (remote.n_reference, remote.n_current, remote.drifted, remote.columns, remote.not_shown)
        == (
            local.n_reference,
            local.n_current,
            local.drifted,
            local.columns,
            local.not_shown,
        )
        == (300, 300, local.drifted, 4, [])
    )
    assert _same_but_ids(remote.page) == _same_but_ids(local.page)


def test_the_page_written_with_the_worker_is_the_page_written_without_it(tmp_path, monitoring):
    """Same churnops section byte for byte, same evidently part but for evidently's fresh widget ids,
    so a rerun of a day gives the same page wherever its view was computed."""
    settings = monitoring(sample_size=300)
    reference, current = _telco_like(600, 0), _telco_like(500, 1, shift=1.5)
    verdicts, report = verdicts_and_report(reference, current, settings)
    with PageWorker(settings) as worker:
        worker.submit(reference, current, NUMERIC, CATEGORICAL)
        path = tmp_path / "worker.html"
        drift_report_html(reference, current, path, verdicts, report, settings, computed=worker.result)
    with_worker = path.read_text(encoding="utf-8")
    without = drift_report_html(reference, current, tmp_path / "here.html", verdicts, report, settings).read_text()
    again = drift_report_html(reference, current, tmp_path / "again.html", verdicts, report, settings).read_text()
    assert _same_but_ids(with_worker) == _same_but_ids(without) == _same_but_ids(again)
    section = re.compile(r'<section id="churnops".*?</section>', re.S)
    assert section.search(with_worker).group(0) == section.search(without).group(0)  # type: ignore[union-attr]


def test_a_view_for_other_columns_or_without_samples_is_none(monitoring):
    settings = monitoring(sample_size=300)
    reference, current = _telco_like(200, 0), _telco_like(200, 1)
    with PageWorker(settings) as worker:
        assert worker.result(NUMERIC, CATEGORICAL) is None, "nothing submitted"
        worker.submit(reference, current, NUMERIC, CATEGORICAL)
        assert worker.result(NUMERIC, ["contract"]) is None, "the page shows other columns: computed in-process"


def test_a_failed_child_is_said_and_gives_no_view(monitoring, caplog):
    settings = monitoring(sample_size=300)
    reference, current = _telco_like(200, 0), _telco_like(200, 1)
    current["contract"] = [["unhashable"]] * len(current)  # evidently_view cannot label these categories
    with PageWorker(settings) as worker:
        worker.submit(reference, current, NUMERIC, CATEGORICAL)
        assert worker.result(NUMERIC, CATEGORICAL) is None
    assert "page worker failed" in caplog.text and "TypeError" in caplog.text

    with PageWorker(settings) as worker:
        worker.submit(reference, current, NUMERIC, CATEGORICAL)
        os.kill(worker._pid, signal.SIGKILL)  # a child that dies without answering
        assert worker.result(NUMERIC, CATEGORICAL) is None
    assert "ended without a view" in caplog.text


def test_a_child_that_hangs_is_killed_after_the_timeout_and_gives_no_view(monitoring, caplog):
    settings = monitoring(sample_size=300)
    with PageWorker(settings, timeout=1.0) as worker:
        worker.submit(_telco_like(200, 0), _telco_like(200, 1), NUMERIC, CATEGORICAL)
        os.kill(worker._pid, signal.SIGSTOP)  # a child stuck, say on a lock held when it forked
        started = time.perf_counter()
        assert worker.result(NUMERIC, CATEGORICAL) is None
        assert time.perf_counter() - started < 10
    assert "ended without a view" in caplog.text and "no view after 1 s" in caplog.text
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(worker._pid, os.WNOHANG)


@pytest.mark.parametrize("submitted", [False, True])
def test_leaving_without_collecting_the_view_ends_the_child_at_once(monitoring, submitted):
    settings = monitoring(sample_size=300)
    worker = PageWorker(settings)
    if submitted:
        worker.submit(_telco_like(200, 0), _telco_like(200, 1), NUMERIC, CATEGORICAL)
    started = time.perf_counter()
    worker.close()
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(worker._pid, os.WNOHANG)
    assert time.perf_counter() - started < 5, "not waited for: the child is stopped"
