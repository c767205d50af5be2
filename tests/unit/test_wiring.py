"""The service factory builds one service, even for concurrent first calls."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.wiring import BuiltOnce, get_service


def test_concurrent_first_calls_build_once() -> None:
    built: list[object] = []

    def build() -> Any:
        time.sleep(0.05)  # wide window for a race
        built.append(object())
        return built[-1]

    once = BuiltOnce(build)
    start = threading.Barrier(32)
    results: list[object] = []

    def call() -> None:
        start.wait()
        results.append(once())

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert results == [built[0]] * 32


def test_cache_clear_builds_anew() -> None:
    once = BuiltOnce(object)  # type: ignore[arg-type]
    first = once()
    assert once() is first
    once.cache_clear()
    assert once() is not first


def test_the_container_service_is_built_once() -> None:
    assert isinstance(get_service, BuiltOnce)


def test_build_service_wires_refresh_and_the_challenger() -> None:
    from chalicelib.config import Settings
    from chalicelib.wiring import build_service

    events: list[str] = []
    service = build_service(
        Settings("b", "p", model_refresh_seconds=5, challenger_version="2", challenger_sample=0.5),
        events=lambda event, fields: events.append(event),
    )
    assert service.store.refresh is not None and service.store.refresh.seconds == 5
    assert service.challenger is not None and service.challenger.sample == 0.5
    assert service.challenger.store.location.version == "2"
    assert service.challenger.store.refresh is None  # pinned: never refreshes


def test_no_refresh_when_its_interval_is_zero_or_the_version_is_pinned() -> None:
    from chalicelib.config import Settings
    from chalicelib.wiring import build_service

    assert build_service(Settings("b", model_refresh_seconds=0)).store.refresh is None
    assert build_service(Settings("b", model_version="3")).store.refresh is None
    assert build_service(Settings("b")).challenger is None
