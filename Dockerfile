# giftq: one image for every role (workers, beat, migrations, the SMTP sink).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GIFTQ_DATA_DIR=/data \
    GIFTQ_TEMPLATES_DIR=/app/templates

WORKDIR /app
RUN useradd --system --create-home --uid 10001 giftq && mkdir -p /data && chown giftq /data

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p giftq ledger delivery migrations \
 && touch giftq/__init__.py ledger/__init__.py delivery/__init__.py migrations/__init__.py \
 && pip install . && pip uninstall -y giftq

COPY . .
RUN pip install --no-deps -e .

USER giftq
VOLUME ["/data"]
CMD ["celery", "-A", "worker", "worker", "--loglevel=INFO"]
