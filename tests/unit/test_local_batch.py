"""`make batch`'s pure parts: a mistake in a variable is one `error:` line naming it
(before any server starts), the outcome line says why a job did not complete, and a
local run keeps its model cache in its own folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev import batch as local_batch
from localdev.servers import model_cache_env


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (["--input", "no-such-file.csv"], "INPUT=no-such-file.csv"),
        (["--input", "__FILE__"], "must end in .csv or .jsonl"),
        (["--pass-through", "row"], "PASS_THROUGH="),
        (["--pass-through", "has space"], "PASS_THROUGH="),
        (["--workers", "0"], "WORKERS=0"),
    ],
)
def test_a_variable_mistake_is_one_error_line_naming_it(
    argv: list[str], variable: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MAKE_VARIABLES", "--input=INPUT --workers=WORKERS --rows=ROWS "
                       "--pass-through=PASS_THROUGH")  # fmt: skip
    argv = [str(Path(__file__)) if a == "__FILE__" else a for a in argv]
    assert local_batch.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and variable in err


def test_the_outcome_names_the_reason_and_the_columns_at_fault() -> None:
    failed = {"status": "failed", "scored": 0, "rejected": 0, "rows": 0,
              "reason": "the header does not match the model's fields (GET /model lists them)",
              "model": {"name": "loan-grade", "version": "1"},
              "problems": [{"field": "grade", "problem": "unknown column"}]}  # fmt: skip
    assert local_batch.outcome(failed).splitlines() == [
        "==> failed: 0 scored, 0 rejected of 0 rows; model loan-grade v1",
        "==> reason: the header does not match the model's fields (GET /model lists them)",
        "    grade: unknown column",
    ]
    unreadable = {"status": "failed", "scored": 0, "rejected": 0, "rows": 0, "model": None,
                  "reason": "the input object does not exist (S3 404)"}  # fmt: skip
    assert local_batch.outcome(unreadable).splitlines()[1] == (
        "==> reason: the input object does not exist (S3 404)")  # fmt: skip
    done = {"status": "completed", "scored": 3, "rejected": 1, "rows": 4,
            "model": {"name": "m", "version": "2"}}  # fmt: skip
    assert local_batch.outcome(done) == "==> completed: 3 scored, 1 rejected of 4 rows; model m v2"


def test_a_local_run_caches_models_in_its_own_folder_unless_told_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make serve` and `make batch` remove their scratch folder when they end; the app's
    Lambda default (/tmp/model-cache) would outlive them."""
    monkeypatch.delenv("MODEL_CACHE_DIR", raising=False)
    assert model_cache_env(tmp_path) == {"MODEL_CACHE_DIR": str(tmp_path / "model-cache")}
    monkeypatch.setenv("MODEL_CACHE_DIR", "/srv/models")
    assert model_cache_env(tmp_path) == {"MODEL_CACHE_DIR": "/srv/models"}
