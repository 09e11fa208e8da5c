"""The sink speaks Twilio's contract: answers, refusals, files, and signed status callbacks."""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from delivery.channels.sms import TwilioClient, status_callback_url
from delivery.channels.sms.sink import Reply, Report, SmsSink
from delivery.retry import FailureKind

from .conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``nullable: true`` means null is allowed too."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out:
            out = {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
    return out


def message_validator(contract: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = {
        "$ref": "#/components/schemas/api.v2010.account.message",
        "components": _json_schema(copy.deepcopy(contract["components"])),
    }
    return jsonschema.Draft202012Validator(schema)


def post(
    sink: SmsSink, form: dict[str, str], *, auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN)
) -> httpx.Response:
    url = f"{sink.base_url}/2010-04-01/Accounts/{auth[0]}/Messages.json"
    return httpx.post(url, data=form, auth=auth, timeout=5)


GOOD = {
    "To": "+14155550123",
    "From": FROM_NUMBER,
    "Body": "Hello",
    "StatusCallback": "https://gifts.example.com/s",
}


def test_an_accepted_text_is_a_message_resource(sink: SmsSink, contract: dict[str, Any]) -> None:
    response = post(sink, GOOD)
    assert response.status_code == 201
    resource = response.json()
    message_validator(contract).validate(resource)
    assert (resource["to"], resource["from"], resource["body"], resource["num_segments"]) == (
        "+14155550123",
        FROM_NUMBER,
        "Hello",
        "1",
    )
    assert resource["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{resource['sid']}.json"


def test_the_examples_of_the_contract_pass_the_same_check(contract: dict[str, Any]) -> None:
    # The check above is only as good as the schema conversion: Twilio's own examples pass it.
    validator = message_validator(contract)
    examples = contract["responses"]["201"]["content"]["application/json"]["examples"]
    for example in examples.values():
        validator.validate(example["value"])
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**examples["create"]["value"], "status": "teleported"})


def test_each_accepted_text_is_a_private_file(sink: SmsSink, tmp_path: Path) -> None:
    sid = post(sink, GOOD).json()["sid"]
    path = tmp_path / "sms" / f"{sid}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kept = json.loads(path.read_text())
    assert (kept["body"], kept["status_callback"]) == ("Hello", GOOD["StatusCallback"])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"To": ""}, 21604),
        ({"To": "0044 20 7946 0000"}, 21211),
        ({"From": ""}, 21603),
        ({"From": "not a sender!"}, 21212),
        ({"From": "", "MessagingServiceSid": "MG123"}, 21705),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"StatusCallback": "https://bad_host.example/s"}, 21609),
        ({"StatusCallback": "/relative"}, 21609),
    ],
)
def test_requests_are_checked_as_twilio_does(sink: SmsSink, change: dict[str, str], code: int) -> None:
    form = {name: value for name, value in {**GOOD, **change}.items() if value}
    response = post(sink, form)
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": response.json()["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert sink.messages == []


def test_credentials_and_paths_are_checked(sink: SmsSink) -> None:
    assert post(sink, GOOD, auth=(ACCOUNT_SID, "wrong")).json()["code"] == 20003
    other = "AC" + "f" * 32
    assert post(sink, GOOD, auth=(other, AUTH_TOKEN)).status_code == 401
    assert (
        httpx.post(f"{sink.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", timeout=5).status_code
        == 404
    )
    assert httpx.get(f"{sink.base_url}/", timeout=5).json()["code"] == 20404
    assert sink.messages == []


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15005550001", 21211), ("+15005550002", 21612), ("+15005550004", 21610), ("+15005550009", 21614)],
)
def test_twilios_magic_numbers(sink: SmsSink, number: str, code: int) -> None:
    response = post(sink, {**GOOD, "To": number})
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_a_script_of_answers_then_the_defaults(sink: SmsSink) -> None:
    sink.script.extend([Reply.error(20429), Reply.error(20500), Reply.error(21211)])
    statuses = [post(sink, GOOD).status_code for _ in range(4)]
    assert statuses == [429, 500, 400, 201]


def test_callbacks_are_signed_and_verify(sink: SmsSink, client: TwilioClient, receiver: Any) -> None:
    endpoint = receiver()
    sink.report = Report()
    answer = client.send("+14155550123", "Hi", status_callback=status_callback_url(endpoint.url, 17))
    posted = sink.wait_for_callbacks(3)
    assert [(c.status, c.answer) for c in posted] == [("queued", 204), ("sent", 204), ("delivered", 204)]
    assert [(r.message_sid, r.status.value, r.delivery_ref) for r in endpoint.reports] == [
        (answer.message_sid, "queued", 17),
        (answer.message_sid, "sent", 17),
        (answer.message_sid, "delivered", 17),
    ]


def test_callbacks_with_a_bad_signature_are_refused(
    sink: SmsSink, client: TwilioClient, receiver: Any
) -> None:
    endpoint = receiver(auth_token="not-the-sinks-token")
    sink.report = Report()
    client.send("+14155550123", "Hi", status_callback=status_callback_url(endpoint.url, 5))
    posted = sink.wait_for_callbacks(3)
    assert [c.answer for c in posted] == [403, 403, 403]
    assert endpoint.reports == []
    assert all(r.error and r.error.startswith("signature") for r in endpoint.received)


def test_undelivered_out_of_order_and_repeated(sink: SmsSink, client: TwilioClient, receiver: Any) -> None:
    endpoint = receiver()
    sink.numbers["+14155550199"] = Reply(report=Report.undelivered(30006, shuffle=True, repeat=2))
    client.send("+14155550199", "Hi", status_callback=status_callback_url(endpoint.url, 9))
    posted = sink.wait_for_callbacks(6)
    assert sorted(c.status for c in posted) == [
        "queued",
        "queued",
        "sent",
        "sent",
        "undelivered",
        "undelivered",
    ]
    assert [c.status for c in posted] != ["queued", "queued", "sent", "sent", "undelivered", "undelivered"]
    assert {c.answer for c in posted} == {204}
    latest = max(endpoint.reports, key=lambda r: r.progress)
    assert latest.final and latest.error_code == 30006
    assert latest.failure is not None and latest.failure.kind is FailureKind.PERMANENT


def test_a_stopped_sink_refuses_connections(tmp_path: Path) -> None:
    sink = SmsSink(tmp_path, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    url = sink.base_url
    sink.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url + "/", timeout=2)
