"""The Celery app, for ``celery -A worker worker -Q ...`` and ``celery -A worker beat``.

Configuration lives in ``delivery/celery_app.py``; tasks in ``delivery/tasks.py``.
"""

from delivery.celery_app import get_app

app = get_app()
