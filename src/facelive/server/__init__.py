"""The liveness web service: FastAPI app (:mod:`.app`), settings, metrics and the web client."""
