"""moto's server standing in for AWS in the deploy rehearsal, with one shim.

`chalice deploy` creates the REST API with ImportRestApi (and updates it with
PutRestApi) from a Swagger 2.0 document. moto 5.2.5 fails both, for two reasons of its
own (`moto/apigateway/models.py`):

1. `import_rest_api` reads `info.description` unconditionally: a document without it,
   like every one Chalice writes, gets a 500 (KeyError 'description').
2. `put_rest_api` refuses anything but OpenAPI 3 ("Only OpenAPI 3.x.x are currently
   supported", 400), though what it reads -- paths, methods, responses and
   `x-amazon-apigateway-integration` -- has the same shape in Swagger 2.0.

3. `put_rest_api` creates every method with no authorization, ignoring the document's
   `security` requirements.

Real API Gateway accepts both documents and applies their security. The shim defaults
the description and relabels a Swagger 2.0 document as OpenAPI 3.0 before moto parses
it; moto then creates the resources, methods and Lambda integrations from Chalice's
document as it would from an OpenAPI 3 one. Afterwards it applies each method's
`security` as API Gateway does: the `api_key` requirement sets apiKeyRequired, a
scheme with `x-amazon-apigateway-authtype: awsSigv4` (Chalice's IAMAuthorizer) sets
authorizationType AWS_IAM. Nothing else is changed.

The tests run it in their own process (`aws_stand_in()`, on a port the kernel picks);
by hand, in a process of its own:

    python -m deployment.moto_aws PORT
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from moto.apigateway.models import APIGatewayBackend

from localdev.servers import MotoServer

_original_import = APIGatewayBackend.import_rest_api
_original_put = APIGatewayBackend.put_rest_api


def _as_moto_reads_it(api_doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(api_doc)
    doc["info"] = {"description": "", **doc.get("info", {})}
    if doc.pop("swagger", None) is not None:
        doc["openapi"] = "3.0.0"
    return doc


def _shimmed_import(self: APIGatewayBackend, api_doc: dict[str, Any], *args: Any) -> Any:
    return _original_import(self, _as_moto_reads_it(api_doc), *args)


def _shimmed_put(self: APIGatewayBackend, rest_api_id: str, api_doc: dict[str, Any],
                  *args: Any, **kwargs: Any) -> Any:  # fmt: skip
    api = _original_put(self, rest_api_id, _as_moto_reads_it(api_doc), *args, **kwargs)
    _apply_security(self, rest_api_id, api_doc)
    return api


def _apply_security(backend: APIGatewayBackend, rest_api_id: str, api_doc: dict[str, Any]
                    ) -> None:  # fmt: skip
    schemes = api_doc.get("securityDefinitions", {})
    resources = {r.get_path(): r for r in backend.get_rest_api(rest_api_id).resources.values()}
    for path, item in api_doc.get("paths", {}).items():
        for method_type, spec in item.items():
            method = resources[path].resource_methods[method_type.upper()]
            for name in (name for requirement in spec.get("security", []) for name in requirement):
                if name == "api_key":
                    method.api_key_required = True
                elif schemes.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4":
                    method.authorization_type = "AWS_IAM"


@contextmanager
def shimmed_apigateway() -> Iterator[None]:
    """moto's ImportRestApi and PutRestApi take Chalice's documents while this lasts."""
    backend: Any = APIGatewayBackend  # patched on purpose: the class as moto uses it
    saved = backend.import_rest_api, backend.put_rest_api
    backend.import_rest_api, backend.put_rest_api = _shimmed_import, _shimmed_put
    try:
        yield
    finally:
        backend.import_rest_api, backend.put_rest_api = saved


@contextmanager
def aws_stand_in(port: int = 0) -> Iterator[MotoServer]:
    """moto's server with the shim, in this process (port 0: one the kernel picks)."""
    with shimmed_apigateway(), MotoServer(port) as server:
        yield server


def main(argv: list[str]) -> None:
    with aws_stand_in(int(argv[0])) as server:
        print(f"moto (AWS stand-in) on {server.url}", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()  # serve until interrupted


if __name__ == "__main__":
    main(sys.argv[1:])
