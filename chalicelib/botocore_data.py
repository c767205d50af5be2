"""botocore's data loader, cheaper at a cold start: the same JSON files, the same data.

Creating the S3 client reads botocore's models (endpoints.json, S3's service model and
endpoint rules: ~3.5 MB of JSON). botocore parses them with an OrderedDict hook (~55 ms
of CPU) and, to check that the service exists, lists every service folder it ships
(~450) once per model type (~20 ms). This loader parses with orjson (same values, same
key order, plain dicts) and looks only in the folders of the services it is built for.
Only botocore's public loader interface is used (`Loader`, `JSONFileLoader.load_file`,
`list_available_services`, `Session.register_component('data_loader', ...)`).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from typing import Any

import orjson
from botocore.loaders import JSONFileLoader, Loader
from botocore.session import Session

#: How botocore stores a model: plain JSON, or gzipped (its larger models).
_OPENERS: tuple[tuple[str, Any], ...] = ((".json", open), (".json.gz", gzip.open))


class OrjsonFileLoader(JSONFileLoader):
    """botocore's JSON file loader, parsing with orjson; anything orjson refuses is
    left to botocore's own parser."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in _OPENERS:
            path = file_path + extension
            if not os.path.isfile(path):
                continue
            with opener(path, "rb") as handle:
                try:
                    data = orjson.loads(handle.read())
                except orjson.JSONDecodeError:
                    return super().load_file(file_path)
            if data is not None:
                return data
        return None


class NamedServicesLoader(Loader):
    """botocore's Loader (same search paths, same files) that knows only `services`:
    `list_available_services` answers from those services' folders instead of listing
    every folder botocore ships. A client for another service is refused as unknown."""

    def __init__(self, services: Iterable[str], extra_search_paths: list[str] | None = None):
        super().__init__(extra_search_paths=extra_search_paths, file_loader=OrjsonFileLoader())
        self._services = tuple(services)
        self._listed: dict[str, list[str]] = {}

    def list_available_services(self, type_name: str) -> list[str]:
        if type_name not in self._listed:
            self._listed[type_name] = sorted(
                service for service in self._services if self._has_model(service, type_name)
            )
        return self._listed[type_name]

    def _has_model(self, service: str, type_name: str) -> bool:
        for root in self.search_paths:
            folder = os.path.join(root, service)
            if not os.path.isdir(folder):
                continue
            for version in os.listdir(folder):
                if self.file_loader.exists(os.path.join(folder, version, type_name)):
                    return True
        return False


def use_named_services_loader(session: Session, services: Iterable[str]) -> Session:
    """`session` with a NamedServicesLoader for `services` as its data loader, searching
    the same paths botocore's would (AWS_DATA_PATH / the `data_path` setting first)."""
    data_path = session.get_config_variable("data_path")
    extra = (
        [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)]
        if data_path
        else None
    )
    session.register_component("data_loader", NamedServicesLoader(services, extra))
    return session
