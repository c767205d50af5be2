"""The cold-start data loader reads the same data botocore's own loader does."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import JSONFileLoader, Loader
from botocore.session import Session

from chalicelib.botocore_data import (
    NamedServicesLoader,
    OrjsonFileLoader,
    use_named_services_loader,
)
from chalicelib.wiring import CLIENT_SERVICES


def test_botocores_own_models_load_to_the_same_data_in_the_same_order() -> None:
    ours, theirs = NamedServicesLoader(CLIENT_SERVICES), Loader()
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        assert json.dumps(ours.load_data(name)) == json.dumps(theirs.load_data(name))
    for service in CLIENT_SERVICES:
        for type_name in ("service-2", "endpoint-rule-set-1"):
            mine = ours.load_service_model(service, type_name)
            assert json.dumps(mine) == json.dumps(theirs.load_service_model(service, type_name))


def test_plain_and_gzipped_files_load_and_a_missing_one_is_none(tmp_path: Path) -> None:
    (tmp_path / "plain.json").write_text('{"b": 1, "a": [1.5, "x", null]}')
    (tmp_path / "packed.json.gz").write_bytes(gzip.compress(b'{"z": {"y": true}}'))
    loader = OrjsonFileLoader()
    assert list(loader.load_file(str(tmp_path / "plain")).items()) == [
        ("b", 1),
        ("a", [1.5, "x", None]),
    ]
    assert loader.load_file(str(tmp_path / "packed")) == {"z": {"y": True}}
    assert loader.load_file(str(tmp_path / "missing")) is None


def test_what_orjson_refuses_is_parsed_by_botocores_loader(tmp_path: Path) -> None:
    (tmp_path / "odd.json").write_text('{"big": 123456789012345678901234567890, "n": NaN}')
    data = OrjsonFileLoader().load_file(str(tmp_path / "odd"))
    assert data["big"] == JSONFileLoader().load_file(str(tmp_path / "odd"))["big"]
    assert math.isnan(data["n"])


def _model(root: Path, service: str, type_name: str) -> None:
    folder = root / service / "2020-01-01"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{type_name}.json").write_text('{"metadata": {}}')


def test_only_the_named_services_are_listed_and_others_are_unknown(tmp_path: Path) -> None:
    _model(tmp_path, "alpha", "service-2")
    _model(tmp_path, "beta", "waiters-2")
    _model(tmp_path, "gamma", "service-2")
    loader = NamedServicesLoader(("alpha", "beta", "absent"), [str(tmp_path)])
    assert loader.list_available_services("service-2") == ["alpha"]
    assert loader.list_available_services("waiters-2") == ["beta"]
    assert loader.load_service_model("alpha", "service-2") == {"metadata": {}}
    with pytest.raises(UnknownServiceError):
        loader.load_service_model("gamma", "service-2")


def test_the_session_keeps_its_data_path_first(tmp_path: Path) -> None:
    session = Session()
    session.set_config_variable("data_path", str(tmp_path))
    loader = use_named_services_loader(session, ["s3"]).get_component("data_loader")
    assert isinstance(loader, NamedServicesLoader)
    assert loader.search_paths[0] == str(tmp_path)
    assert loader.search_paths[1:] == Loader().search_paths
