"""The batch worker's metrics and a batch job's challenger, against moto S3 + SQS over
HTTP (the fixtures and helpers of test_batch)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from chalicelib.batch_layout import Chunk, JobLayout
from chalicelib.config import Settings
from chalicelib.wiring import build_batch_jobs, build_service
from modelops.examples import holdout_records
from tests.conftest import STAGE, PublishedModel
from tests.emf_spec import emf_lines, metric_values, units
from tests.functional import test_batch
from tests.functional.test_batch import SECRET, Batch, csv_bytes

CHALLENGER = "2c"
batch = test_batch.batch  # the fixture: a batch path of its own per test


def _lines(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    return capsys.readouterr().out.splitlines() + caplog.text.splitlines()


def _events(lines: list[str], event: str) -> list[dict[str, Any]]:
    return [d for d in emf_lines(lines) if d.get("event") == event]


def _last_per_part(documents: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """A redelivered chunk (1 s visibility in these queues) is scored again: keep the last."""
    return {d["part"]: d for d in documents}


def _planted(published: PublishedModel, rows: int) -> tuple[list[dict[str, Any]], bytes]:
    records, _ = holdout_records(published.model_dir, rows)
    names = list(records[0])
    bad = [records[0] | {"annual_inc": SECRET}, records[1] | {"term": SECRET}]
    return records, csv_bytes(records, [",".join(str(r[n]) for n in names) for r in bad])


def test_chunk_and_split_metrics_are_emf_and_carry_no_submitted_value(
    batch: Batch,
    published: PublishedModel,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    _, body = _planted(published, 300)
    job = batch.jobs.start(batch.bucket, batch.upload("observed.csv", body))
    summary = batch.drain(job)
    assert (summary["scored"], summary["rejected"]) == (300, 2)

    lines = _lines(capsys, caplog)
    assert not [line for line in lines if SECRET in line or "Jane" in line]
    [split] = _events(lines, "batch_job_split")
    assert metric_values(split) == {"BatchJobs": 1, "BatchJobRows": 302, "BatchJobChunks": 3}
    assert (split["Model"], split["Version"], split["Stage"]) == ("loan-grade", "1", STAGE)
    assert split["Engine"] and split["job"] == job
    chunks = _last_per_part(_events(lines, "batch_chunk_scored"))
    assert sorted(chunks) == [0, 1, 2]
    values = [metric_values(d) for d in chunks.values()]
    assert sum(v["BatchRowsScored"] for v in values) == 300
    assert sum(v["BatchRowsRejected"] for v in values) == 2
    assert sum(v["BatchRows"] for v in values) == 302
    # Each chunk is also one request line of the core (Surface batch_chunk), with the
    # part's prediction summary, dimensioned by the snapshot that scored it.
    requests = {int(d["request_id"].rsplit("/", 1)[1]): d for d in _events(lines, "request")
                if d.get("Surface") == "batch_chunk"}  # fmt: skip
    assert sorted(requests) == [0, 1, 2]
    for part, (document, value) in enumerate(zip(chunks.values(), values, strict=True)):
        assert value["BatchChunks"] == 1 and value["BatchRowsPerSecond"] > 0
        assert value["BatchRowsPerSecond"] == pytest.approx(
            value["BatchRows"] / value["BatchChunkSeconds"], rel=0.01
        )
        request = requests[part]
        assert request["request_id"] == f"{job}/{part}" and request["status"] == 200
        counted = metric_values(request)
        assert (counted["Requests"], counted["Records"]) == (1, value["BatchRows"])
        predicted = {k: v for k, v in counted.items() if k.startswith("Predicted.")}
        assert sum(predicted.values()) == value["BatchRowsScored"]  # the part's summary
        assert 0 < counted["MeanTopProbability"] <= 1
        assert (request["Version"], request["Model"]) == ("1", "loan-grade")
        assert units(document)["BatchRowsPerSecond"] == "Count/Second"
        assert units(document)["BatchChunkSeconds"] == "Seconds"
        dimension_sets = [d["Dimensions"] for d in document["_aws"]["CloudWatchMetrics"]]
        assert dimension_sets == [[["Service", "Stage", "Model", "Version", "Engine"]]]


def test_a_failed_split_and_a_dead_lettered_chunk_are_counted(
    batch: Batch,
    published: PublishedModel,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    records, _ = holdout_records(published.model_dir, 3)
    renamed = [{("income" if k == "annual_inc" else k): v for k, v in r.items()} for r in records]
    batch.jobs.start(batch.bucket, batch.upload("renamed.csv", csv_bytes(renamed)))
    batch.jobs.start(batch.bucket, batch.upload("notes.txt", b"anything"))
    job = batch.jobs.start(batch.bucket, batch.upload("dead.csv", csv_bytes(records)))
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(QueueUrl=batch.queues.chunks)["Messages"]
    batch.jobs.give_up(Chunk.from_json(message["Body"]))

    lines = _lines(capsys, caplog)
    failed = _events(lines, "batch_job_failed")
    assert [(d["ErrorCode"], metric_values(d)) for d in failed] == [
        ("header_mismatch", {"BatchJobFailures": 1}),
        ("not_csv_or_jsonl", {"BatchJobFailures": 1}),
    ]
    [dead] = _events(lines, "batch_chunk_dead_lettered")
    assert metric_values(dead) == {"BatchChunksDeadLettered": 1}
    assert (dead["job"], dead["part"], dead["Version"]) == (job, 0, "1")
    assert batch.jobs.progress(job)["status"] == "completed_with_failures"


@pytest.fixture(scope="module")
def challenger(published: PublishedModel, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Version 2c of loan-grade, published without promoting it: version 1's network
    with its last layer's weights perturbed, so some answers differ."""
    import keras

    from modelops.publish import main as publish

    model = keras.saving.load_model(published.model_dir / "model.keras", compile=False)
    layer = [layer for layer in model.layers if layer.get_weights()][-1]
    noise = np.random.default_rng(5)
    layer.set_weights([w + noise.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    path = tmp_path_factory.mktemp("challenger") / "model.keras"
    model.save(path)
    source = published.model_dir
    code = publish([
        "--model", str(path), "--preprocessing", str(source / "preprocessing.json"),
        "--labels", str(source / "labels.json"), "--metrics", str(source / "metrics.json"),
        "--feature-stats", str(source / "feature_stats.json"), "--name", "loan-grade",
        "--version", CHALLENGER, "--stage", STAGE, "--no-promote", "--overwrite",
    ])  # fmt: skip
    assert code == 0
    return CHALLENGER


def _with_challenger(batch: Batch, version: str) -> Iterator[Batch]:
    env = batch.env | {"CHALLENGER_VERSION": version}
    yield dataclasses.replace(batch, env=env, jobs=build_batch_jobs(Settings.from_env(env)))


def _challenger_rows(batch: Batch, job: str, version: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3")
    prefix = f"{JobLayout(batch.output_prefix, job).root}challenger-{version}/"
    listed = s3.list_objects_v2(Bucket=batch.bucket, Prefix=prefix).get("Contents", [])
    rows: list[dict[str, Any]] = []
    for item in sorted(listed, key=lambda i: i["Key"]):
        body = s3.get_object(Bucket=batch.bucket, Key=item["Key"])["Body"].read()
        rows += [orjson.loads(line) for line in body.splitlines()]
    return rows


def test_a_challenger_scores_every_row_into_its_own_folder(
    batch: Batch, published: PublishedModel, challenger: str
) -> None:
    [shadowed] = _with_challenger(batch, challenger)
    records, body = _planted(published, 300)
    job = shadowed.jobs.start(batch.bucket, shadowed.upload("shadowed.csv", body))
    summary = shadowed.drain(job)
    parts, errors, _ = shadowed.outputs(job)
    theirs = _challenger_rows(shadowed, job, challenger)

    assert (summary["status"], summary["scored"], summary["rejected"]) == ("completed", 300, 2)
    assert [p["row"] for p in parts] == [t["row"] for t in theirs] == list(range(300))
    settings = Settings.from_env(shadowed.env)
    for version, rows in (("1", parts), (challenger, theirs)):  # as /predict would answer
        service = build_service(dataclasses.replace(settings, model_version=version))
        answer = service.predict(records)
        assert answer["model"]["version"] == version
        for row, prediction in zip(rows, answer["predictions"], strict=True):
            assert row["label"] == prediction["label"]
            assert row["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-6)
    # The reference: the same label, and the mean |difference| per row, from the parts.
    agreement = np.mean([a["label"] == b["label"] for a, b in zip(parts, theirs, strict=True)])
    difference = np.mean([np.mean([abs(a["probabilities"][k] - b["probabilities"][k])
                                   for k in a["probabilities"]])
                          for a, b in zip(parts, theirs, strict=True)])  # fmt: skip
    shadow = summary["challenger"]
    assert (shadow["version"], shadow["rows"], shadow["failed_parts"]) == (challenger, 300, [])
    assert shadow["agreement_rate"] == pytest.approx(agreement)
    assert shadow["mean_abs_probability_diff"] == pytest.approx(difference)
    assert shadow["mean_abs_probability_diff"] > 0 and shadow["agreement_rate"] < 1
    print(
        f"\nchallenger {challenger} on 300 rows: agreement {shadow['agreement_rate']:.3f}, "
        f"mean |p diff| {shadow['mean_abs_probability_diff']:.4f}"
    )
    plan = orjson.loads(
        boto3.client("s3")
        .get_object(Bucket=batch.bucket, Key=JobLayout(batch.output_prefix, job).plan_key())["Body"]
        .read()
    )
    assert plan["challenger"] == {"version": challenger}
    assert len(errors) == 2


def test_a_missing_challenger_leaves_the_champion_and_the_job_untouched(
    batch: Batch,
    published: PublishedModel,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, body = _planted(published, 300)
    plain_job = batch.jobs.start(batch.bucket, batch.upload("plain.csv", body))
    batch.drain(plain_job)
    expected, _, _ = batch.outputs(plain_job)
    [shadowed] = _with_challenger(batch, "404")
    job = shadowed.jobs.start(batch.bucket, shadowed.upload("unshadowed.csv", body))
    summary = shadowed.drain(job)
    parts, _, _ = shadowed.outputs(job)

    assert (summary["status"], summary["scored"], summary["rejected"]) == ("completed", 300, 2)
    assert [(p["row"], p["label"]) for p in parts] == [(p["row"], p["label"]) for p in expected]
    assert _challenger_rows(shadowed, job, "404") == []
    shadow = summary["challenger"]
    assert (shadow["version"], shadow["rows"], shadow["agreement_rate"]) == ("404", 0, None)
    assert [f["part"] for f in shadow["failed_parts"]] == [0, 1, 2]
    assert {f["code"] for f in shadow["failed_parts"]} == {"not_found"}
    failed = _last_per_part(_events(_lines(capsys, caplog), "batch_challenger_failed"))
    assert sorted(failed) == [0, 1, 2]
    assert {(d["Version"], d["ChallengerVersion"]) for d in failed.values()} == {("1", "404")}
