"""Following @champion: a swap is one assignment, a version that fails to load is refused and the old one serves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from churnops.config import load_config
from churnops.serving import ChampionFollower
from tests.helpers import TELCO_CONFIG


@dataclass
class Loaded:
    model_name: str
    version: str


class Registry:
    """Where the alias points, and which versions fail to load."""

    def __init__(self) -> None:
        self.champion: str | None = None
        self.broken: set[str] = set()
        self.down = False
        self.loads: list[str] = []

    def resolve(self, config) -> str | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.champion

    def load(self, config, version: str) -> Loaded:
        self.loads.append(version)
        if version in self.broken:
            raise ValueError(f"refusing to load churn-predictor version {version}: its artifacts' SHA-256 is x")
        return Loaded("churn-predictor", version)


@pytest.fixture
def registry():
    return Registry()


@pytest.fixture
def follower(registry):
    return ChampionFollower(load_config(TELCO_CONFIG), loader=registry.load, resolver=registry.resolve)


def test_not_ready_without_a_champion_then_serving_it(registry, follower):
    ready, body = follower.health()
    assert not ready and body["status"] == "unavailable" and body["detail"] == "no model loaded yet"
    follower.check()
    ready, body = follower.health()
    assert not ready and "has no @champion" in body["detail"]
    registry.champion = "1"
    assert follower.check().version == "1"
    assert follower.health() == (True, {"status": "ok", "model_name": "churn-predictor", "model_version": "1"})
    follower.check()
    assert registry.loads == ["1"], "an unmoved alias is not loaded again"


def test_a_version_that_fails_to_load_is_refused_and_the_old_one_keeps_serving(registry, follower, caplog):
    registry.champion = "1"
    served = follower.check()
    registry.champion, registry.broken = "2", {"2"}
    assert follower.check() is served
    ready, body = follower.health()
    assert ready and body["model_version"] == "1"
    assert body["refused_versions"] == {"2": body["detail"]} and "SHA-256" in body["detail"]
    assert "version 2 (@champion) refused" in caplog.text and "still serving version 1" in caplog.text
    registry.broken = set()  # fixed: taken at the next poll
    assert follower.check().version == "2"
    assert follower.health()[1] == {"status": "ok", "model_name": "churn-predictor", "model_version": "2"}


def test_the_alias_moved_back_clears_the_refusal(registry, follower):
    registry.champion = "1"
    follower.check()
    registry.champion, registry.broken = "2", {"2"}
    follower.check()
    registry.champion = "1"
    follower.check()
    assert follower.health()[1] == {"status": "ok", "model_name": "churn-predictor", "model_version": "1"}


def test_an_unreachable_registry_keeps_the_model_served(registry, follower):
    registry.champion = "1"
    follower.check()
    registry.down = True
    assert follower.check().version == "1"
    ready, body = follower.health()
    assert ready and "cannot read @champion" in body["detail"]


def test_the_polling_thread_follows_and_stops(registry):
    import time

    config = load_config(TELCO_CONFIG).model_copy(
        update={"serving": load_config(TELCO_CONFIG).serving.model_copy(update={"poll_seconds": 0.05})}
    )
    follower = ChampionFollower(config, loader=registry.load, resolver=registry.resolve)
    registry.champion = "1"
    follower.start()
    try:
        deadline = time.monotonic() + 10
        while (follower.current is None or follower.current.version != "1") and time.monotonic() < deadline:
            time.sleep(0.01)
        registry.champion = "3"
        while follower.current.version != "3" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert follower.current.version == "3"
    finally:
        follower.stop()
    assert not follower._thread.is_alive()
