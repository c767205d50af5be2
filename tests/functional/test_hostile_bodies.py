"""Hostile bodies up to 6 MB through the Lambda handler, each in a fresh interpreter,
on every JSON surface (/predict, V2 infer, POST /batch): the right 4xx, peak RSS
growth over the warm baseline within 64 MB, a small answer, and quick. The 0.5 s
target is `make bench`'s (this box is shared; here time is only bounded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.hostile_bodies import MAX_GROWTH_MB, run_one
from deployment.stages import stage_environment
from localdev.servers import MotoServer, s3_env
from tests.conftest import PublishedModel


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("nested arrays [[[...]]]", 400, "invalid_json"),
        ("2.1M empty objects [{},...]", 413, "too_many_records"),
        ('{"instances": [{},...]}', 413, "too_many_records"),
        ("580k unknown keys in 1 record", 400, "invalid_records"),
        ("raw loan records (5,700)", 413, "too_many_records"),
        ('V2 {"inputs":[{},...]}', 413, "-"),
        ("V2 data [[],[],...]", 413, "-"),
        ("V2 unknown member x:[{},...]", 413, "-"),
        ("V2 580k parameters keys", 413, "-"),
        ("V2 90,000 unknown inputs", 413, "-"),
        ('batch {"input":[{},...]}', 413, "too_many_values"),
    ],
)
def test_a_hostile_body_is_refused_in_bounded_memory_and_time(
    published: PublishedModel, s3_server: MotoServer, tmp_path: Path,
    body: str, status: int, code: str,
) -> None:  # fmt: skip
    env = stage_environment("dev") | s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path)}
    result = run_one(body, published.model_dir, env)
    assert (result.status, result.code) == (status, code)
    assert result.size_mb >= (5.0 if "unknown inputs" in body else 6.0)
    assert result.answer_kb <= 10.0
    assert result.growth_mb <= MAX_GROWTH_MB
    assert result.seconds <= 2.0


def test_unknown_v2_input_names_are_listed_up_to_a_cap(
    published: PublishedModel, s3_server: MotoServer, tmp_path: Path
) -> None:
    env = stage_environment("dev") | s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path)}
    result = run_one("V2 2,000 unknown inputs", published.model_dir, env)
    assert result.status == 400
    assert result.answer_kb <= 4.0  # 100 names and "and 1,900 more", not 2,000 names
