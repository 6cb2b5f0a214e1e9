"""The service process: what its lifespan sets up and gives back."""

from __future__ import annotations

import asyncio

from threadpoolctl import threadpool_info, threadpool_limits

from churnops.config import load_config
from churnops.serving import ChampionFollower, create_app
from tests.helpers import TELCO_CONFIG


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_the_service_computes_on_one_blas_thread_and_gives_the_threads_back():
    config = load_config(TELCO_CONFIG)
    follower = ChampionFollower(config, resolver=lambda config: None)  # no champion: nothing to load
    app = create_app(config, follower)
    seen: list[set[int]] = []

    async def serve_once() -> None:
        async with app.router.lifespan_context(app):
            seen.append(blas_threads())

    with threadpool_limits(2, user_api="blas"):
        asyncio.run(serve_once())
        assert seen == [{1}], "a second BLAS thread only spins on a core the request needs"
        assert blas_threads() == {2}
