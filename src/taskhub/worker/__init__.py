"""The background worker: Celery on the Redis broker, and the in-process fallback without Redis."""
