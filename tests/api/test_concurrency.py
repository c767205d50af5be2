"""`chalice local` serves on several threads; a LiteRT interpreter is not thread-safe.
Concurrent requests must each get their own correct answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from modelops.examples import holdout_records
from tests.conftest import PublishedModel

pytestmark = pytest.mark.slow  # a chalice local of its own under load


def test_concurrent_requests_get_correct_answers(api_url: str, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 200)
    # Different batch sizes force the interpreter to resize between requests.
    batches = [records[i : i + size] for i, size in enumerate([1, 7, 50, 3, 120, 2, 33, 64] * 4)]
    with httpx.Client(timeout=60) as client:
        expected = [client.post(f"{api_url}/predict", json=b).json() for b in batches]

    def ask(batch: list[dict[str, object]]) -> dict[str, object]:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{api_url}/predict", json=batch).json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, batches))
    assert answers == expected
