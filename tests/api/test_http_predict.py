"""POST /predict, GET /health, GET /model over HTTP against a real `chalice local`."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import numpy as np

from modelops.examples import encode_records, holdout_records
from tests.conftest import PublishedModel


def post(api_url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{api_url}/predict", content=json.dumps(body),
                      headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip


def probabilities(response: httpx.Response, labels: list[str]) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(
        [[p["probabilities"][k] for k in labels] for p in response.json()["predictions"]]
    )


def test_raw_records_get_grades(api_url: str, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 5)
    response = post(api_url, {"instances": records})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "loan-grade", "version": published.version}
    assert len(body["predictions"]) == 5
    for prediction in body["predictions"]:
        probs = prediction["probabilities"]
        assert list(probs) == list("ABCDEFG")
        assert abs(sum(probs.values()) - 1) < 1e-5
        assert prediction["label"] == max(probs, key=probs.get)


def test_served_probabilities_equal_keras_on_the_holdout(
    api_url: str, published: PublishedModel, keras_model: Any
) -> None:
    records, _ = holdout_records(published.model_dir, 1000)
    encoded = encode_records(published.model_dir, records)
    expected = np.asarray(keras_model(np.array([list(r.values()) for r in encoded], np.float32)))
    labels = list("ABCDEFG")
    served_raw = probabilities(post(api_url, {"instances": records}), labels)
    served_encoded = probabilities(post(api_url, encoded), labels)
    assert len(records) >= 500
    assert np.abs(served_raw - expected).max() <= 1e-5
    assert np.abs(served_encoded - expected).max() <= 1e-5


def test_body_forms_and_key_order_do_not_matter(api_url: str, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 8)
    shuffled = []
    rng = random.Random(3)
    for record in records:
        items = list(record.items())
        rng.shuffle(items)
        shuffled.append(dict(items))
    reference = post(api_url, {"instances": records}).json()["predictions"]
    assert post(api_url, records).json()["predictions"] == reference
    assert post(api_url, shuffled).json()["predictions"] == reference


def test_predictions_keep_input_order(api_url: str, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 30)
    forward = post(api_url, records).json()["predictions"]
    backward = post(api_url, records[::-1]).json()["predictions"]
    assert backward == forward[::-1]


def test_health_and_model_metadata(api_url: str, published: PublishedModel) -> None:
    post(api_url, holdout_records(published.model_dir, 1)[0])
    health = httpx.get(f"{api_url}/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    model = httpx.get(f"{api_url}/model").json()
    assert model["name"] == "loan-grade" and model["version"] == published.version
    assert model["labels"] == list("ABCDEFG")
    assert len(model["encoded_features"]) == 113
    kinds = {f["name"]: f["kind"] for f in model["features"]}
    assert kinds["fico_range_high"] == "numeric" and kinds["term"] == "categorical"
    assert "sha256" not in json.dumps(model)
