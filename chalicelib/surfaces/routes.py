"""HTTP knowledge the deployment needs from the HTTP surface: which routes are public.

Every other route gets the stage's auth (API_AUTH: IAM or an API key), including one
added later: app.py protects at registration, `make package` and the deploy rehearsal
check the REST API against this set.
"""

from __future__ import annotations

#: (method, path) left open in every auth mode, for load balancers' and orchestrators'
#: probes. They answer no model output.
PUBLIC_ROUTES = frozenset(
    {("GET", "/health"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready")}
)


def is_public(method: str, path: str) -> bool:
    """Whether `method path` (a route's path as Chalice declares it) needs no auth."""
    return (method.upper(), path) in PUBLIC_ROUTES
