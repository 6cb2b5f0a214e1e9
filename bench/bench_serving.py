"""Benchmark of ``churnops serve``; writes bench/RESULTS_SERVING.md and bench/serving.json.

    .venv/bin/python bench/bench_serving.py [--family lightgbm] [--single 200] [--big-rows 10000]
        [--big-repeat 5] [--clients 50] [--seconds 20] [--output F] [--json-out F]

In a temporary CHURNOPS_HOME (fresh SQLite MLflow store): ``churnops train --families <family>
--cv-folds 2`` registers the champion, then ``churnops serve`` runs as its own process on a free
local port and this process measures it over HTTP (httpx, one kept-alive connection per client),
with rows drawn from the Telco sources (raw columns, as a batch file holds them). Request bodies are
encoded before the clock starts; every answer is decoded (``json.loads``) and its number of
predictions checked before it stops:

1. single-row latency: ``--single`` sequential ``POST /predict`` of one row, reasons on (p50, p99);
2. throughput: one ``--big-rows``-row request, ``explain=false`` as JSON rows and as JSON columns
   (``{"columns": {...}}``), then with reasons as JSON rows, ``--big-repeat`` times each (rows/s of
   the median request, wall time from send to parsed answer);
3. concurrency: ``--clients`` clients (asyncio) sending one-row requests back to back for
   ``--seconds`` seconds: requests, errors, p50/p99 latency.

Targets (2 cores, LightGBM, Telco columns): single row p50 <= 10 ms and p99 <= 30 ms; 10,000 rows
>= 100,000 rows/s without reasons and >= 20,000 rows/s with them; 50 clients for 20 s without an error.
The client shares the machine's cores with the server, as a caller on the same host would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "include" / "data" / "telco"


def telco_rows(count: int, seed: int = 0) -> list[dict]:
    import pandas as pd

    frames = [pd.read_csv(DATA / f"{name}.csv", dtype=str) for name in ("customers", "services", "accounts")]
    merged = frames[0].merge(frames[1], on="customerid").merge(frames[2], on="customerid").drop(columns=["churn"])
    return json.loads(merged.sample(count, replace=True, random_state=seed).to_json(orient="records"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


JSON = {"Content-Type": "application/json"}


def answer(response, rows: int) -> dict:
    """The decoded answer, checked: HTTP 200 and one prediction per row sent."""
    response.raise_for_status()
    body = json.loads(response.content)
    assert len(body["predictions"]) == rows, (len(body["predictions"]), rows)
    return body


def single_rows(client, rows: list[dict]) -> dict:
    # Bodies are encoded before the clock starts; each answer is decoded and checked before it stops.
    bodies = [json.dumps({"rows": [row]}).encode() for row in rows]
    latencies, versions = [], set()
    for body in bodies:
        start = time.perf_counter()
        decoded = answer(client.post("/predict", content=body, headers=JSON), 1)
        latencies.append((time.perf_counter() - start) * 1000)
        versions.add(decoded["model_version"])
    return {
        "requests": len(rows),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "versions": sorted(versions),
    }


def big_request(client, rows: list[dict], explain: bool, repeat: int, form: str = "rows") -> dict:
    if form == "columns":
        body = json.dumps({"columns": {name: [row[name] for row in rows] for name in rows[0]}}).encode()
    else:
        body = json.dumps({"rows": rows}).encode()
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.post("/predict", content=body, params={"explain": str(explain).lower()}, headers=JSON)
        answer(response, len(rows))
        walls.append(time.perf_counter() - start)
    median = statistics.median(walls)
    return {
        "rows": len(rows),
        "form": form,
        "explain": explain,
        "median_s": median,
        "rows_per_s": len(rows) / median,
    }


async def concurrent_clients(url: str, rows: list[dict], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    bodies = [json.dumps({"rows": [row]}).encode() for row in rows[:1000]]
    stop = time.perf_counter() + seconds

    async def one_client(k: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            i = k
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    response = await client.post("/predict", content=bodies[i % len(bodies)], headers=JSON)
                    if response.status_code != 200:
                        errors.append(f"HTTP {response.status_code}")
                    else:
                        answer(response, 1)
                except (httpx.HTTPError, AssertionError, ValueError) as exc:
                    errors.append(repr(exc))
                latencies.append((time.perf_counter() - start) * 1000)
                i += clients

    began = time.perf_counter()
    await asyncio.gather(*(one_client(k) for k in range(clients)))
    wall = time.perf_counter() - began
    return {
        "clients": clients,
        "seconds": wall,
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "requests_per_s": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def report(results: dict, command: str) -> str:
    single, concurrent = results["single"], results["concurrent"]
    lines = [
        "# Serving benchmark results",
        "",
        "Written by `bench/bench_serving.py` (see its docstring for the method). Targets, on a 2-core machine with",
        "a LightGBM champion on Telco columns: one-row p50 <= 10 ms and p99 <= 30 ms (reasons on); a 10,000-row",
        "request >= 100,000 rows/s without reasons and >= 20,000 rows/s with them; 50 clients for 20 s without error.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"load average at the start {results['machine']['load_average']}, at the end "
        f"{results['machine'].get('load_average_end')}; champion: {results['family']}.",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| one row, reasons on: p50 / p99 ({single['requests']} sequential requests) | "
        f"{single['p50_ms']:.1f} ms / {single['p99_ms']:.1f} ms |",
    ]
    for big in results["big"]:
        lines.append(
            f"| {big['rows']:,} rows in one request as JSON {big.get('form', 'rows')}, "
            f"{'with' if big['explain'] else 'without'} reasons | "
            f"{big['rows_per_s']:,.0f} rows/s ({big['median_s'] * 1000:.0f} ms) |"
        )
    lines += [
        f"| {concurrent['clients']} clients for {concurrent['seconds']:.0f} s: requests, errors | "
        f"{concurrent['requests']:,}, {concurrent['errors']} |",
        f"| {concurrent['clients']} clients: p50 / p99, requests/s | {concurrent['p50_ms']:.1f} ms / "
        f"{concurrent['p99_ms']:.1f} ms, {concurrent['requests_per_s']:,.0f}/s |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="lightgbm")
    parser.add_argument("--single", type=int, default=200)
    parser.add_argument("--big-rows", type=int, default=10_000)
    parser.add_argument("--big-repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS_SERVING.md")
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench" / "serving.json")
    args = parser.parse_args()
    import httpx

    churnops = [sys.executable, "-m", "churnops.cli"]
    with tempfile.TemporaryDirectory(prefix="churnops-bench-serving-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURNOPS_"))}
        env.update(CHURNOPS_HOME=home, CHURNOPS_CONFIG=str(ROOT / "include" / "config" / "telco.yaml"))
        train = [*churnops, "train", "--families", args.family, "--cv-folds", "2", "--json"]
        subprocess.run(train, env=env, check=True, capture_output=True)
        port = free_port()
        with (Path(home) / "serve.log").open("w") as log:
            server = subprocess.Popen(
                [*churnops, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            url = f"http://127.0.0.1:{port}"
            try:
                with httpx.Client(base_url=url, timeout=120) as client:
                    deadline = time.monotonic() + 180
                    while time.monotonic() < deadline:
                        try:
                            if client.get("/health").status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        if server.poll() is not None:
                            sys.exit("churnops serve stopped:\n" + (Path(home) / "serve.log").read_text()[-3000:])
                        time.sleep(0.5)
                    rows = telco_rows(max(args.big_rows, args.single))
                    single_rows(client, rows[:20])  # warm-up: first requests import and allocate
                    results = {
                        "family": args.family,
                        "machine": {
                            "cpus": os.cpu_count(),
                            "python": platform.python_version(),
                            "load_average": [round(x, 2) for x in os.getloadavg()],
                        },
                        "single": single_rows(client, rows[: args.single]),
                        "big": [
                            big_request(client, rows[: args.big_rows], explain, args.big_repeat, form)
                            for form, explain in (("rows", False), ("columns", False), ("rows", True))
                        ],
                    }
                results["concurrent"] = asyncio.run(concurrent_clients(url, rows, args.clients, args.seconds))
                results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            finally:
                server.terminate()
                server.wait(timeout=60)
    # Paths inside the repository are shown relative to it: the results name no folder of this machine.
    command = "python bench/bench_serving.py " + " ".join(
        str(Path(a).relative_to(ROOT)) if Path(a).is_absolute() and Path(a).is_relative_to(ROOT) else a
        for a in sys.argv[1:]
    )
    args.output.write_text(report(results, command.strip()))
    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, command.strip()))


if __name__ == "__main__":
    main()
