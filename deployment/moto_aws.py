"""moto's server standing in for AWS in the deploy rehearsal, with one shim.

`chalice deploy` creates the REST API with ImportRestApi (and updates it with
PutRestApi) from a Swagger 2.0 document. moto 5.2.5 fails both, for two reasons of its
own (`moto/apigateway/models.py`):

1. `import_rest_api` reads `info.description` unconditionally: a document without it,
   like every one Chalice writes, gets a 500 (KeyError 'description').
2. `put_rest_api` refuses anything but OpenAPI 3 ("Only OpenAPI 3.x.x are currently
   supported", 400), though what it reads -- paths, methods, responses and
   `x-amazon-apigateway-integration` -- has the same shape in Swagger 2.0.

Real API Gateway accepts both. The shim defaults the description and relabels a
Swagger 2.0 document as OpenAPI 3.0 before moto parses it; moto then creates the
resources, methods and Lambda integrations from Chalice's document as it would from an
OpenAPI 3 one. Nothing else is changed.

    python -m deployment.moto_aws PORT
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.apigateway.models import APIGatewayBackend
from moto.server import ThreadedMotoServer

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
    return _original_put(self, rest_api_id, _as_moto_reads_it(api_doc), *args, **kwargs)


def main(argv: list[str]) -> None:
    APIGatewayBackend.import_rest_api = _shimmed_import  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = _shimmed_put  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(argv[0]), verbose=False)
    server.start()
    print(f"moto (AWS stand-in) on http://127.0.0.1:{argv[0]}", flush=True)
    try:
        threading.Event().wait()  # serve until terminated
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
