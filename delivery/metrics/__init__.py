"""Prometheus metrics: counters at the moments things happen, gauges read from the database.

- :mod:`.instruments`: counters and histograms that the code moves as it works (orders
  issued or failed, cards issued, sends by outcome, send latency, retries, tasks). In a
  prefork worker or a multi-process API they are kept per process in
  ``PROMETHEUS_MULTIPROC_DIR`` and added up at scrape time.
- :mod:`.database`: gauges computed from the database at each scrape (deliveries by
  channel and status, scheduler lag, oldest queued delivery, outstanding card liability,
  lockouts). The database is the truth about *how many are where now*: a gauge kept by
  counting transitions in many processes drifts across restarts and crashes, and cannot
  say how many deliveries sat ``queued`` before the process started.
- :mod:`.exposition`: one scrape (both of the above) for the API's ``/metrics`` and for
  the worker's own endpoint (``GIFTQ_WORKER_METRICS_PORT``).

No claim code is ever a label or a value: labels are channels, statuses, currencies,
outcomes and task names.
"""
