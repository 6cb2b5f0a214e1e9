"""The HTTP service: ``POST /predict``, ``GET /health``, ``GET /model-info`` and the OpenAPI docs at ``/docs``.

Request bodies are read as bytes and parsed with msgspec (JSON) or pandas (CSV) instead of
through pydantic models: a 10,000-row request would otherwise spend most of its time in
per-cell validation. The pydantic models below only document the shapes in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import repeat
from typing import Any

import msgspec
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from churnops.config import ChurnopsConfig
from churnops.serving.follow import ChampionFollower
from churnops.serving.inputs import BadRequest, check_rows, read_json_rows, rows_from_csv
from churnops.serving.requests_log import RequestLog

__all__ = ["create_app", "serve"]


INLINE_BELOW_BYTES = 32 * 1024
"""Smaller bodies (a few dozen rows) are answered on the event loop: a couple of milliseconds of work
costs less than handing it to a worker thread and back, which on a busy machine waits for a core twice."""


class PredictRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(
        description="Raw rows as in a batch file: the model's input columns (see /model-info), optionally the id"
    )


class PredictColumnsRequest(BaseModel):
    columns: dict[str, list[Any]] = Field(
        description="The same rows column by column: each column's values in row order, every column as long"
        " (the form that costs the server least for thousands of rows)"
    )


class Reason(BaseModel):
    feature: str
    value: Any
    contribution: float = Field(description="In /model-info's reasons_unit: log_odds or probability")


class RowPrediction(BaseModel):
    id: Any | None = Field(None, description="The row's id, when it has one")
    probability: float = Field(description="P(positive class), exactly the registered pyfunc model's")
    label: int = Field(description="1 when probability >= threshold")
    risk: str
    reasons: list[Reason] | None = Field(None, description="Absent with ?explain=false")


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    threshold: float
    predictions: list[RowPrediction]


_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [PredictRequest.model_json_schema(), PredictColumnsRequest.model_json_schema()]}
            },
            "text/csv": {"schema": {"type": "string", "description": "a header line, then one row per line"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


def create_app(config: ChurnopsConfig, follower: ChampionFollower | None = None) -> FastAPI:
    """The prediction service for ``config``'s registered model, following ``@champion``.

    Args:
        config: the dataset (id column, numeric columns), the registry and the ``serving`` section.
        follower: the champion follower (default: a new one, polling from startup to shutdown).

    Returns:
        The FastAPI app (run it with uvicorn).
    """
    follower = follower or ChampionFollower(config)
    request_log: RequestLog | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal request_log
        from threadpoolctl import threadpool_limits

        # A request's matrix products are small (10,000 × a few dozen): a second BLAS thread saves
        # nothing, then spins for its next task on a core that LightGBM, the event loop or a caller
        # on the same host needs. One thread computes every element exactly as two do.
        blas = threadpool_limits(1, user_api="blas")
        if config.serving.log_requests:
            request_log = RequestLog(config)
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            if request_log is not None:
                request_log.close()
            blas.restore_original_limits()

    app = FastAPI(
        title="churnops",
        summary=f"Predictions of {config.registry.model_name}@{config.registry.champion_alias}",
        lifespan=lifespan,
    )
    app.state.follower = follower

    @app.get("/health")
    def health() -> JSONResponse:
        """200 once a model is served (with any refused version); 503 with the reason before."""
        ready, body = follower.health()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/model-info")
    def model_info() -> JSONResponse:
        """The served version: name, version, alias, family, training metrics, threshold, input columns, hash."""
        model = follower.current
        if model is None:
            return JSONResponse({"detail": follower.error}, status_code=503)
        return JSONResponse(model.info())

    @app.post("/predict", response_model=PredictResponse, openapi_extra=_PREDICT_BODY)
    async def predict(request: Request, explain: bool = Query(True, description="compute reasons")) -> Response:
        """Predict raw rows: JSON rows, JSON columns, a CSV body or a CSV file upload.

        JSON rows are ``{"rows": [{column: value, ...}, ...]}``; JSON columns are
        ``{"columns": {column: [value, ...], ...}}``, every column as long, checked and answered as
        the same rows would be, and cheaper for the server to read when there are thousands of rows.
        """
        model = follower.current  # this request's model, whatever a swap does meanwhile
        if model is None:
            return JSONResponse({"detail": follower.error}, status_code=503)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body = await _limited_body(request, config.serving.max_body_bytes)
            if content_type == "multipart/form-data":
                body = await _uploaded_file(request, body)
                content_type = "text/csv"
            if len(body) < INLINE_BELOW_BYTES:
                return _predict(model, body, content_type, explain)
            return await run_in_threadpool(_predict, model, body, content_type, explain)
        except BadRequest as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    def _predict(model: Any, body: bytes, content_type: str, explain: bool) -> Response:
        serving, dataset = config.serving, config.dataset
        numeric = set(dataset.numeric_features)
        if content_type in ("text/csv", "application/csv"):
            frame = rows_from_csv(body, serving.max_rows)
            rows = check_rows(frame, model.input_columns, numeric, dataset.id_column)
        else:
            rows = read_json_rows(
                body, serving.max_rows, model.input_columns, numeric, dataset.id_column, model.categories
            )
        result = model.predict(rows, config, explain)
        if request_log is not None:
            request_log.add(rows.frame, model.input_columns)
        headers = {"X-Churnops-Model-Version": model.version}
        if rows.ignored:
            # Header values are Latin-1: other characters are written as escapes.
            names = ", ".join(rows.ignored).replace('"', "'").encode("ascii", "backslashreplace").decode()
            headers["Warning"] = f'299 churnops "unknown columns ignored: {names}"'
        return Response(_answer(model, result, rows.ids), media_type="application/json", headers=headers)

    return app


class _Row(msgspec.Struct, omit_defaults=True, gc=False):
    """One row's answer as encoded: ``id`` and ``reasons`` left out when unset."""

    probability: float
    label: int
    risk: str
    id: Any = msgspec.UNSET
    reasons: Any = msgspec.UNSET


class _Answer(msgspec.Struct):
    model_name: str
    model_version: str
    threshold: float
    predictions: list[_Row]


def _answer(model: Any, result: Any, ids: list[Any] | None) -> bytes:
    """The JSON answer, encoded by msgspec from the result's arrays (no per-row dict, no pydantic)."""
    columns: list[Any] = [result.probability.tolist(), result.label.tolist(), result.risk]
    if ids is not None or result.reasons is not None:
        if ids is not None and type(None) in set(map(type, ids)):
            ids = [msgspec.UNSET if i is None else i for i in ids]  # a row without an id: no "id" key
        columns.append(repeat(msgspec.UNSET) if ids is None else ids)
    if result.reasons is not None:
        columns.append(result.reasons)
    predictions = list(map(_Row, *columns))
    return msgspec.json.encode(_Answer(model.model_name, model.version, model.threshold, predictions))


async def _limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes before any of it is parsed.

    A ``Content-Length`` over the limit is refused before the body is read; a body without one
    (chunked) is read chunk by chunk and refused as soon as it passes the limit.
    """
    declared = request.headers.get("content-length")
    too_long = BadRequest(413, f"the body is longer than serving.max_body_bytes = {limit} bytes")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_long
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_long
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded_file(request: Request, body: bytes) -> bytes:
    """The first file of a multipart upload whose body was read (:func:`_limited_body`)."""
    sent = False

    async def receive() -> dict[str, Any]:
        # The body once, as the server would have passed it: the parser reads the bytes already read.
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form()
    except Exception as exc:  # a malformed multipart body is the caller's
        raise BadRequest(400, f"the multipart body cannot be read: {exc}") from None
    for value in form.values():
        if hasattr(value, "read"):
            return bytes(await value.read())
    raise BadRequest(422, "the multipart body holds no file: upload the CSV as a file field")


def serve(config: ChurnopsConfig, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """Run the service with uvicorn until it is stopped (Ctrl-C, SIGTERM).

    Args:
        config: the loaded config.
        host: the address to listen on.
        port: the port.

    Returns:
        What was served last: ``{"model_name", "model_version"}`` (the version None if none ever loaded).
    """
    import uvicorn

    logging.getLogger("churnops").setLevel(logging.INFO)
    if not logging.getLogger("churnops").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("churnops").addHandler(handler)
    follower = ChampionFollower(config)
    uvicorn.run(create_app(config, follower), host=host, port=port, log_level="info")
    current = follower.current
    return {"model_name": config.registry.model_name, "model_version": current.version if current else None}
