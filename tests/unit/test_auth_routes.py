"""Every route of app.py is either public (PUBLIC_ROUTES) or protected by the stage's
API_AUTH, in each mode; app.py is imported afresh in a subprocess per mode, as
`chalice package`/`chalice deploy` import it with the stage's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from chalice import Blueprint, IAMAuthorizer

from app import ProtectedByDefault
from chalicelib.config import AUTH_MODES, ConfigurationError, api_auth
from chalicelib.surfaces.routes import PUBLIC_ROUTES
from project_paths import PROJECT_DIR

DUMP = """
import json, app
print(json.dumps([[m, p, type(e.authorizer).__name__ if e.authorizer else None,
                   bool(e.api_key_required)]
                  for p, ms in app.app.routes.items() for m, e in ms.items()]))
"""


def routes_under(mode: str) -> list[tuple[str, str, str | None, bool]]:
    env = {**os.environ, "API_AUTH": mode}
    out = subprocess.run([sys.executable, "-c", DUMP], cwd=PROJECT_DIR, env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [tuple(row) for row in json.loads(out.splitlines()[-1])]


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_every_route_is_public_or_protected(mode: str) -> None:
    routes = routes_under(mode)
    assert ("POST", "/predict", *{"iam": ("IAMAuthorizer", False),
            "api_key": (None, True), "none": (None, False)}[mode]) in routes  # fmt: skip
    for method, path, authorizer, key in routes:
        if (method, path) in PUBLIC_ROUTES or mode == "none":
            assert (authorizer, key) == (None, False), (method, path)
        elif mode == "iam":
            assert (authorizer, key) == ("IAMAuthorizer", False), (method, path)
        else:
            assert (authorizer, key) == (None, True), (method, path)
    assert ("GET", "/health", None, False) in routes


def test_a_route_added_later_even_by_blueprint_is_protected_and_a_public_one_is_not() -> None:
    app = ProtectedByDefault("t", "iam")

    @app.route("/v2/models/{name}/infer", methods=["POST"])
    def infer(name: str) -> Any:
        return name

    @app.route("/v2/health/live")
    def live() -> Any:
        return {}

    blueprint = Blueprint(__name__)

    @blueprint.route("/metadata")
    def metadata() -> Any:
        return {}

    app.register_blueprint(blueprint, url_prefix="/v2")
    assert isinstance(app.routes["/v2/models/{name}/infer"]["POST"].authorizer, IAMAuthorizer)
    assert isinstance(app.routes["/v2/metadata"]["GET"].authorizer, IAMAuthorizer)
    assert app.routes["/v2/health/live"]["GET"].authorizer is None


def test_unset_auth_is_iam_and_a_typo_is_refused() -> None:
    assert api_auth({}) == "iam"
    assert api_auth({"API_AUTH": " API_KEY "}) == "api_key"
    with pytest.raises(ConfigurationError, match="API_AUTH must be one of iam, api_key, none"):
        api_auth({"API_AUTH": "open"})
