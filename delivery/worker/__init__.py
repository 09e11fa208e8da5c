"""The Celery side: the app and its configuration, the thin tasks, and the publisher that
the outbox uses. Nothing outside this package imports Celery."""
