"""The liveness web service: the app factory (:mod:`.app`), its routers (:mod:`.routes`), state,
request parsing, errors, OpenAPI schemas, settings, metrics and the web client (``static/``)."""
