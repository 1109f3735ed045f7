"""Operating the service: health and readiness, metrics, JSON logging, the server process."""
