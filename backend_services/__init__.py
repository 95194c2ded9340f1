"""The auth and message services, and what they share (`core/`, the HTTP edge, logs, metrics)."""

# What /metrics and the API docs say each service is.
VERSION = "0.1.0"
