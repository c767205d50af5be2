"""Ways in: each surface turns its own input into records, calls the core, and turns
the core's result (or ServiceError) back into its own output.

The core (everything in chalicelib outside this package) never sees an HTTP body,
a header or a queue message. Nothing in chalicelib imports Chalice: `app.py` wraps
the plain `HttpAnswer`s built here into Chalice responses.
"""
