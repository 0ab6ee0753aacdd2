"""Applying the profile's faults to one request: injected 5xx, outage windows, throttled-but-applied
writes and malformed collection answers (see :mod:`providers.emulator.faults`).

Must: draw every random number from the engine's seeded ``rng``; count each injected fault.
"""

from __future__ import annotations

from typing import Any

from providers.emulator.context import Emu
from providers.emulator.faults import Outage
from providers.emulator.wire import GraphHttpError, Req, Resp, iso

__all__ = ["FAULT_CODES", "inject_status", "malform", "outage_error", "throttled_after_apply"]

FAULT_CODES = {500: "generalException", 502: "badGateway", 503: "serviceNotAvailable", 504: "gatewayTimeout"}


def inject_status(emu: Emu, req: Req) -> None:
    """Raise an injected 5xx before the request is applied."""
    for rule in emu.profile.faults:
        if rule.rate > 0 and rule.matches(req.method, req.template) and emu.rng.random() < rule.rate:
            emu.counters.faults += 1
            headers = {"Retry-After": "1"} if rule.status == 503 else {}
            raise GraphHttpError(
                rule.status,
                FAULT_CODES.get(rule.status, "serviceError"),
                "Injected fault: the service is temporarily unavailable.",
                headers,
            )


def outage_error(emu: Emu, req: Req, elapsed: float) -> None:
    """Raise the outage's answer while an :class:`Outage` window covers this request."""
    for outage in emu.profile.outages:
        if outage.active(elapsed, req.method, req.template) and (
            outage.rate >= 1.0 or emu.rng.random() < outage.rate
        ):
            emu.counters.faults += 1
            emu.counters.outage_answers += 1
            raise _outage(outage)


def _outage(outage: Outage) -> GraphHttpError:
    return GraphHttpError(
        outage.status,
        FAULT_CODES.get(outage.status, "serviceError"),
        "The service is currently unavailable. Please try again later.",
        {"Retry-After": f"{outage.retry_after:g}"},
    )


def throttled_after_apply(emu: Emu, req: Req, resp: Resp, is_write: bool) -> Resp:
    """A successful write answered 429/5xx although it WAS applied (``applied_error_rate``)."""
    if not is_write or resp.status >= 300:
        return resp
    for rule in emu.profile.faults:
        if rule.applied_error_rate <= 0 or not rule.matches(req.method, req.template):
            continue
        if emu.rng.random() >= rule.applied_error_rate:
            continue
        emu.counters.faults += 1
        emu.counters.applied_despite_error += 1
        if rule.applied_status == 429:
            return _too_many(emu, req)
        return emu.error(
            req,
            GraphHttpError(
                rule.applied_status,
                FAULT_CODES.get(rule.applied_status, "serviceError"),
                "The service is temporarily unavailable.",
                {"Retry-After": "1"} if rule.applied_status == 503 else {},
            ),
        )
    return resp


def _too_many(emu: Emu, req: Req) -> Resp:
    resp = emu.error(req, GraphHttpError(429, "TooManyRequests", "Please retry again later."))
    body: dict[str, Any] = resp.body
    body["error"]["innerError"].update({"code": "429", "status": "429", "date": iso(emu.now)})
    resp.headers.update(
        {
            "Retry-After": f"{emu.rng.uniform(0.5, 3.0):.3f}",
            "x-ms-throttle-scope": "Tenant_Application/ReadWrite",
            "x-ms-throttle-information": "ResourceUnitLimitExceeded",
        }
    )
    return resp


def malform(emu: Emu, req: Req, resp: Resp) -> Resp:
    """Damage a collection answer (``GET`` whose body has ``value``) as a matching rule says."""
    if (
        req.method != "GET"
        or resp.status != 200
        or not isinstance(resp.body, dict)
        or "value" not in resp.body
    ):
        return resp
    for rule in emu.profile.faults:
        if rule.malformed_rate <= 0 or not rule.matches(req.method, req.template):
            continue
        if emu.rng.random() >= rule.malformed_rate:
            continue
        emu.counters.faults += 1
        emu.counters.malformed_answers += 1
        body = dict(resp.body)
        values = list(body.get("value") or [])
        if rule.malformed == "no_value":
            del body["value"]
        elif rule.malformed == "null_items":
            at = emu.rng.randrange(len(values) + 1)
            values.insert(at, None)
            body["value"] = values
        elif rule.malformed == "wrong_types":
            body["value"] = [_wrong(v) for v in values] or [{"id": 0}]
        else:
            body["value"] = {"items": values}
        return Resp(resp.status, body, resp.headers)
    return resp


def _wrong(item: Any) -> Any:
    if not isinstance(item, dict):
        return 0
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "id":
            out[key] = 12345
        elif key == "displayName":
            out[key] = ["not", "a", "string"]
        elif isinstance(value, list):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = value
    return out
