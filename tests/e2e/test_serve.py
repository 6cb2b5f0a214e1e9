"""``churnops serve`` as a real process on a free local port, against a real SQLite registry of trained models.

The module trains a LightGBM champion (v1) and a logistic-regression challenger (v2), both
calibrated (isotonic, so what is served is the calibrated pipeline's probability), starts
``churnops serve`` with a 1 s poll and request logging on, then checks every endpoint, the
equality with the registered pyfunc, each bad input, a refused version and the alias follow.
The tests run in file order: the later ones move ``@champion``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.helpers import churnops_environment, telco_table, write_config

pytestmark = pytest.mark.e2e

POLL_SECONDS = 1.0
MAX_ROWS = 500
MAX_BODY_BYTES = 1_000_000
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def telco_rows() -> pd.DataFrame:
    return telco_table(dtype=str).drop(columns=["churn"]).head(300)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Two registered versions (v1 @champion: LightGBM, v2 @challenger: logistic regression) and a running server."""
    from churnops.cli import main

    root = tmp_path_factory.mktemp("serve-home")
    config = write_config(
        root / "config.yaml",
        training={"families": ["lightgbm"], "cv_folds": 2, "calibration": "isotonic"},
        serving={
            "poll_seconds": POLL_SECONDS,
            "max_rows": MAX_ROWS,
            "max_body_bytes": MAX_BODY_BYTES,
            "log_requests": True,
            "log_flush_seconds": 1,
        },
    )
    with churnops_environment(root, config):
        assert main(["train"]) == 0
        assert main(["train", "--families", "logistic_regression"]) == 0
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(__file__).parents[2] / "include"), env.get("PYTHONPATH")])
        )
        log = (root / "serve.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "churnops.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, (root / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
            else:
                pytest.fail("the server never became ready:\n" + (root / "serve.log").read_text()[-3000:])
            yield {"root": root, "client": client, "config": config, "log": root / "serve.log", "port": port}
        finally:
            client.close()
            server.terminate()
            server.wait(timeout=30)
            log.close()


def predict(client: httpx.Client, rows: list[dict], **params) -> httpx.Response:
    return client.post("/predict", json={"rows": rows}, params=params)


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_health_model_info_and_docs(stack):
    from mlflow import MlflowClient

    client = stack["client"]
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["model_version"] == "1"
    info = client.get("/model-info").json()
    from churnops.tracking import version_threshold

    version = MlflowClient().get_model_version("churn-predictor", "1")
    tag = version.tags["churnops.artifact_sha256"]
    assert info["model_name"] == "churn-predictor" and info["model_version"] == "1" and info["alias"] == "champion"
    assert info["family"] == "lightgbm" and info["reasons_unit"] == "log_odds"
    assert info["calibration"] == version.tags["churnops.calibration"] == "isotonic"
    assert info["threshold"] == version_threshold(version), "the version's own threshold"
    assert info["artifact_sha256"] == tag and len(tag) == 64
    assert {"cv_roc_auc", "test_roc_auc"} <= set(info["training_metrics"])
    assert info["input_columns"][:3] == ["tenure", "monthlycharges", "totalcharges"]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict", "/health", "/model-info"} <= set(paths)
    assert "text/csv" in paths["/predict"]["post"]["requestBody"]["content"]
    forms = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [list(form["properties"]) for form in forms] == [["rows"], ["columns"]]


def test_predictions_are_the_pyfunc_probabilities_with_labels_bands_and_reasons(stack):
    from churnops.config import load_config
    from churnops.tracking import load_registered_model, version_threshold

    config = load_config(stack["config"])
    threshold = version_threshold("1", config.registry)
    frame = telco_rows()
    response = predict(stack["client"], records(frame))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "churn-predictor" and body["model_version"] == "1" and body["threshold"] == threshold
    assert response.headers["X-Churnops-Model-Version"] == "1"
    pyfunc = np.asarray(load_registered_model(config.registry, "1").predict(frame))[:, 1]
    served = np.array([p["probability"] for p in body["predictions"]])
    assert np.array_equal(served, pyfunc), "exactly what the registered pyfunc returns"
    assert [p["label"] for p in body["predictions"]] == (pyfunc >= threshold).astype(int).tolist()
    assert 0 < sum(p["label"] for p in body["predictions"]) < len(frame)
    bands = np.array(["low", "medium", "high"])[np.searchsorted([0.3, 0.6], pyfunc, side="right")]
    assert [p["risk"] for p in body["predictions"]] == bands.tolist()
    assert {p["risk"] for p in body["predictions"]} == {"low", "medium", "high"}
    assert [p["id"] for p in body["predictions"]] == frame["customerid"].tolist()
    features = set(config.dataset.feature_columns)
    for prediction, row in zip(body["predictions"], records(frame), strict=True):
        reasons = prediction["reasons"]
        assert len(reasons) == 3 and {r["feature"] for r in reasons} <= features
        sizes = [abs(r["contribution"]) for r in reasons]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
        assert all(r["value"] == row[r["feature"]] for r in reasons)

    fast = predict(stack["client"], records(frame), explain="false").json()
    assert [p["probability"] for p in fast["predictions"]] == served.tolist()
    assert all("reasons" not in p for p in fast["predictions"])


def test_csv_body_and_csv_upload_give_the_same_predictions(stack):
    frame = telco_rows().head(20)
    as_json = predict(stack["client"], records(frame)).json()["predictions"]
    csv = frame.to_csv(index=False)
    as_csv = stack["client"].post("/predict", content=csv, headers={"Content-Type": "text/csv"})
    upload = stack["client"].post("/predict", files={"file": ("batch.csv", csv, "text/csv")})
    assert as_csv.status_code == upload.status_code == 200, as_csv.text + upload.text
    assert as_csv.json()["predictions"] == upload.json()["predictions"] == as_json


def test_a_columnar_body_is_answered_exactly_as_the_same_rows(stack):
    frame = telco_rows()
    columns = {name: frame[name].tolist() for name in frame.columns}
    for explain in ("true", "false"):
        as_rows = predict(stack["client"], records(frame), explain=explain)
        as_columns = stack["client"].post("/predict", json={"columns": columns}, params={"explain": explain})
        assert as_rows.status_code == as_columns.status_code == 200, as_columns.text
        assert as_columns.content == as_rows.content, "byte for byte: probabilities, ids and reasons"
    extra = stack["client"].post("/predict", json={"columns": {**columns, "zz": columns["tenure"]}})
    assert extra.status_code == 200 and "zz" in extra.headers["Warning"]
    missing = {name: cells for name, cells in columns.items() if name != "contract"}
    response = stack["client"].post("/predict", json={"columns": missing})
    assert response.status_code == 422 and "contract" in response.json()["detail"]
    ragged = stack["client"].post("/predict", json={"columns": {**columns, "tenure": columns["tenure"][:-1]}})
    assert ragged.status_code == 422, ragged.text
    too_many = {name: cells * 2 for name, cells in columns.items()}
    assert stack["client"].post("/predict", json={"columns": too_many}).status_code == 413


def test_unknown_columns_are_ignored_and_named_in_a_warning_header(stack):
    row = {**records(telco_rows().head(1))[0], "favourite_colour": "blue", "shoe_size": 44}
    response = predict(stack["client"], [row])
    assert response.status_code == 200
    assert "favourite_colour, shoe_size" in response.headers["Warning"]


BAD = {
    "missing column": (lambda r: [{k: v for k, v in r.items() if k != "contract"}], 422, ["contract"]),
    "wrong type": (lambda r: [r, {**r, "tenure": "twelve"}], 422, ["row 1", "tenure", "twelve"]),
    "a list as a category": (lambda r: [{**r, "gender": ["F"]}], 422, ["row 0", "gender"]),
    "a boolean as a number": (lambda r: [{**r, "monthlycharges": True}], 422, ["row 0", "monthlycharges"]),
    "a row not an object": (lambda r: [r, [1, 2]], 422, ["row 1"]),
    "no rows": (lambda r: [], 422, ["no rows"]),
    "too many rows": (lambda r: [r] * (MAX_ROWS + 1), 413, [str(MAX_ROWS)]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_4xx_naming_the_problem(stack, case):
    make, status, words = BAD[case]
    response = predict(stack["client"], make(records(telco_rows().head(1))[0]))
    assert response.status_code == status, response.text
    assert all(word in response.json()["detail"] for word in words), response.json()


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"rows": {"a": 1}}', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b"", "text/csv", 400),
        (b"tenure,contract\n1,Two year\n", "text/csv", 422),
    ],
)
def test_malformed_bodies_are_4xx(stack, body, content_type, status):
    response = stack["client"].post("/predict", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text


def body_of(size: int, rows: list[dict]) -> bytes:
    """A valid JSON predict body of exactly ``size`` bytes (the rows, then spaces)."""
    body = json.dumps({"rows": rows}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def raw_exchange(port: int, head: str, chunks: list[bytes] = ()) -> bytes:
    """Send a request head and some body bytes on a plain socket, and read what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode())
        for chunk in chunks:
            connection.sendall(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def test_a_body_at_the_limit_is_served_and_one_byte_more_is_a_413(stack):
    rows = records(telco_rows().head(3))
    client = stack["client"]
    exact = client.post("/predict", content=body_of(MAX_BODY_BYTES, rows), headers=JSON)
    assert exact.status_code == 200 and len(exact.json()["predictions"]) == 3, exact.text
    over = client.post(
        "/predict", content=body_of(MAX_BODY_BYTES + 1, rows), headers={"Content-Type": "application/json"}
    )
    assert over.status_code == 413 and "max_body_bytes" in over.json()["detail"], over.text

    def chunked(body: bytes):
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    # Without a Content-Length (httpx sends a generator chunked): the same limit, counted as read.
    exact = client.post("/predict", content=chunked(body_of(MAX_BODY_BYTES, rows)), headers=JSON)
    assert exact.status_code == 200, exact.text
    over = client.post("/predict", content=chunked(body_of(MAX_BODY_BYTES + 1, rows)), headers=JSON)
    assert over.status_code == 413 and "max_body_bytes" in over.json()["detail"], over.text
    assert client.get("/health").status_code == 200


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(stack):
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    answer = raw_exchange(stack["port"], head, [b'{"rows": ['])  # no more body follows: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(stack):
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b" " * 65536
    count = MAX_BODY_BYTES // len(piece) + 1  # past the limit; the body never ends (no last chunk)
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * count
    answer = raw_exchange(stack["port"], head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert stack["client"].get("/health").status_code == 200


def test_served_rows_are_logged_in_the_incoming_layout(stack):
    from churnops.config import load_config
    from churnops.monitoring import read_files

    frame = telco_rows().head(7).assign(customerid=[f"LOGGED-{i}" for i in range(7)])
    assert predict(stack["client"], records(frame)).status_code == 200
    folder = stack["root"] / "serving" / f"date={datetime.now(UTC).date().isoformat()}"
    deadline = time.monotonic() + 30
    logged = pd.DataFrame()
    while time.monotonic() < deadline:
        files = sorted(folder.glob("part-*.parquet"))
        logged = pd.concat([pd.read_parquet(f) for f in files]) if files else logged
        if "customerid" in logged and logged["customerid"].str.startswith("LOGGED-").sum() == 7:
            break
        time.sleep(0.5)
    config = load_config(stack["config"])
    assert list(logged.columns) == [config.dataset.id_column, *config.dataset.feature_columns]
    mine = logged[logged["customerid"].str.startswith("LOGGED-")]
    assert sorted(mine["customerid"]) == sorted(frame["customerid"])
    typed = read_files(config, sorted(folder.glob("part-*.parquet")))  # what monitoring reads of incoming/
    assert typed["tenure"].dtype == "float64" and len(typed) == len(logged)


def set_champion(version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias("churn-predictor", "champion", version)


def test_a_version_whose_files_do_not_match_their_digest_is_refused_and_the_old_one_serves(stack):
    from churnops.config import load_config
    from churnops.tracking import digest_record_path, record_artifact_digest, register_version
    from tests.helpers import log_tiny_models

    config = load_config(stack["config"])
    ((run_id, model_uri),) = log_tiny_models(1)
    version, _ = register_version(model_uri, run_id, config.registry, {})
    record_artifact_digest(config.registry, version)
    record = digest_record_path(config.registry, version)
    changed = {**json.loads(record.read_text()), "artifact_sha256": "0" * 64}
    record.write_text(json.dumps(changed))
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag("churn-predictor", version, "churnops.artifact_sha256", "0" * 64)
    set_champion(version)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = stack["client"].get("/health").json()
            if version in health.get("refused_versions", {}):
                break
            time.sleep(0.3)
        assert health["status"] == "ok" and health["model_version"] == "1"
        assert "SHA-256" in health["refused_versions"][version]
        answer = predict(stack["client"], records(telco_rows().head(2)))
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        assert f"version {version} (@champion) refused" in stack["log"].read_text()
    finally:
        set_champion("1")


def test_moving_champion_is_followed_within_the_poll_with_no_failed_request(stack):
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag("churn-predictor", "2", "churnops.threshold", "0.2")
    rows = records(telco_rows().head(50))
    seen: list[tuple[float, float, int, str | None]] = []  # (sent, answered, status, version)
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=stack["client"].base_url, timeout=60) as own:
            while not stop.is_set():
                sent = time.monotonic()
                response = predict(own, rows)
                version = response.json().get("model_version") if response.status_code == 200 else None
                seen.append((sent, time.monotonic(), response.status_code, version))

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(1)
    moved = time.monotonic()
    set_champion("2")
    deadline = moved + 60
    while time.monotonic() < deadline and not any(v == "2" for *_, v in seen):
        time.sleep(0.1)
    time.sleep(1)
    stop.set()
    for worker in workers:
        worker.join()
    assert seen and all(status == 200 for _, _, status, _ in seen), {s for _, _, s, _ in seen}
    first_new = min(answered for _, answered, _, v in seen if v == "2")
    # A request sent before the swap may finish on the old version; none sent after it does.
    assert all(v == "2" for sent, _, _, v in seen if sent > first_new), "the old version answered after the swap"
    assert any(v == "1" for *_, v in seen), "requests were answered before the move too"
    # Within the poll interval plus the new version's load (download, digest check, unpickle).
    assert first_new - moved < POLL_SECONDS + 30
    after = predict(stack["client"], rows).json()
    assert after["model_version"] == "2" and after["threshold"] == 0.2
    assert [p["label"] for p in after["predictions"]] == [int(p["probability"] >= 0.2) for p in after["predictions"]]
    info = stack["client"].get("/model-info").json()
    assert info["family"] == "logistic_regression" and info["reasons_unit"] == "log_odds"
