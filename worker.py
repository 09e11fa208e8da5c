"""The Celery app, for ``celery -A worker worker -Q ...`` and ``celery -A worker beat``.

Configuration lives in ``delivery/worker/celery_app.py``; tasks in ``delivery/worker/tasks.py``.
"""

from delivery.worker.celery_app import get_app

app = get_app()
