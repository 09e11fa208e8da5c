"""A storefront in another process that knows giftq only by its task's name.

    python bench/fault_client.py BROKER_URL < orders.jsonl > placed.jsonl

Reads one ``{"key", "order", "at"}`` object a line (``at``: seconds after the start at
which to send it), sends each as the Celery task ``giftq.place_order`` by name with JSON
kwargs (message protocol 2, as any Celery client builds it) to the ``orders`` queue,
and writes one ``{"key", "task_id", "tries"}`` line per order once the broker took it.
While the broker is away (a restart), it tries again: the key makes a second
placement of the same order harmless. It imports kombu and nothing of giftq, which its
last line proves (``{"imported_giftq": false}``).
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from kombu import Connection


def publish(connection: Connection, key: str, order: object) -> str:
    task_id = str(uuid.uuid4())
    body = json.dumps([[], {"order": order, "idempotency_key": key}, {"callbacks": None, "errbacks": None}])
    channel = connection.default_channel
    channel.basic_publish(
        channel.prepare_message(
            body,
            content_type="application/json",
            content_encoding="utf-8",
            headers={
                "lang": "py",
                "task": "giftq.place_order",
                "id": task_id,
                "root_id": task_id,
                "retries": 0,
            },
            properties={"correlation_id": task_id, "delivery_info": {"routing_key": "orders"}},
        ),
        exchange="",
        routing_key="orders",
    )
    return task_id


def main(broker_url: str) -> int:
    started = time.monotonic()
    connection = Connection(broker_url, connect_timeout=2)
    for raw in sys.stdin:
        item = json.loads(raw)
        pause = started + float(item.get("at", 0)) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        tries = 0
        while True:
            tries += 1
            try:
                task_id = publish(connection, item["key"], item["order"])
                break
            except Exception as exc:  # the broker is away: reconnect and send again
                print(json.dumps({"key": item["key"], "retrying": type(exc).__name__}), file=sys.stderr)
                connection.release()
                time.sleep(0.5)
                connection = Connection(broker_url, connect_timeout=2)
        print(json.dumps({"key": item["key"], "task_id": task_id, "tries": tries}), flush=True)
    connection.release()
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"giftq", "delivery", "ledger", "api"})
    print(json.dumps({"imported_giftq": bool(leaked), "modules": leaked}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
