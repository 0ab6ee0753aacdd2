"""``POST /$batch``: at most 20 requests with unique ids, relative urls, ``dependsOn`` (424 when a
dependency failed), per-item status, headers and body; responses in any order (shuffled by a seeded
random when the profile says so). Each item is routed, throttled and counted on its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from providers.emulator.context import Emu
from providers.emulator.router import normalise_path
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request

__all__ = ["run_batch"]

MAX_REQUESTS = 20


def _validate(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise bad_request('Invalid batch payload: expected {"requests": [...]}.', "BadRequest")
    items: list[dict[str, Any]] = body["requests"]
    if not items:
        raise bad_request("Invalid batch payload: no requests.", "BadRequest")
    if len(items) > MAX_REQUESTS:
        raise bad_request(
            f"Invalid batch payload format: number of requests {len(items)} exceeds the limit "
            f"of {MAX_REQUESTS}.",
            "BadRequest",
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not item.get("id") or not item.get("method") or not item.get("url"):
            raise bad_request("Invalid batch payload: every request needs id, method and url.", "BadRequest")
        key = str(item["id"]).lower()
        if key in seen:
            raise bad_request(
                f"Invalid batch payload: request id '{item['id']}' is not unique.", "BadRequest"
            )
        seen.add(key)
        url = str(item["url"])
        if url.startswith(("http://", "https://")):
            raise bad_request("Invalid batch payload: urls must be relative.", "BadRequest")
    for item in items:
        if not isinstance(item.get("dependsOn") or [], list):
            raise bad_request(
                "Invalid batch payload: dependsOn must be an array of request ids.", "BadRequest"
            )
        for dep in item.get("dependsOn") or []:
            if str(dep).lower() not in seen:
                raise bad_request(
                    f"Invalid batch payload: dependsOn '{dep}' is not a request id.", "BadRequest"
                )
    return items


def run_batch(emu: Emu, req: Req) -> Resp:
    emu.counters.requests[("POST", "/$batch")] += 1
    emu.counters.batch_calls += 1
    try:
        items = _validate(req.body)
    except GraphHttpError as exc:
        return emu.error(req, exc)
    emu.counters.batch_items += len(items)
    results: dict[str, Resp] = {}
    pending = list(items)
    while pending:
        ready = [i for i in pending if all(str(d).lower() in results for d in i.get("dependsOn") or [])]
        if not ready:  # a dependency cycle: nothing can run
            for item in pending:
                cycle = GraphHttpError(424, "FailedDependency", "Request is part of a dependsOn cycle.")
                results[str(item["id"]).lower()] = emu.error(req, cycle)
            break
        for item in ready:
            pending.remove(item)
            deps = [str(d).lower() for d in item.get("dependsOn") or []]
            failed = next((d for d in deps if results[d].status >= 400), None)
            if failed is not None:
                dep = GraphHttpError(424, "FailedDependency", f"Request depends on '{failed}', which failed.")
                results[str(item["id"]).lower()] = emu.error(req, dep)
            else:
                results[str(item["id"]).lower()] = _run_one(emu, req, item)
    order = [str(i["id"]) for i in items]
    if emu.profile.shuffle_batch_responses:
        emu.rng.shuffle(order)
    responses = []
    for rid in order:
        resp = results[rid.lower()]
        entry: dict[str, Any] = {
            "id": rid,
            "status": resp.status,
            "headers": {k: v for k, v in resp.headers.items() if k.lower() != "content-length"},
        }
        entry["body"] = resp.body
        responses.append(entry)
    return Resp(200, {"responses": responses})


def _run_one(emu: Emu, outer: Req, item: dict[str, Any]) -> Resp:
    split = urlsplit("/" + str(item["url"]).lstrip("/"))
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    body = item.get("body")
    inner = Req(
        str(item["method"]).upper(),
        normalise_path(split.path),
        dict(parse_qsl(split.query)),
        {**{k: v for k, v in outer.headers.items() if k == "authorization"}, **headers},
        body,
        outer.base,
        in_batch=True,
    )
    if body is not None and "content-type" not in headers:
        return emu.error(
            inner,
            bad_request("Content-Type header must be specified when a request has a body.", "BadRequest"),
        )
    if inner.path == "/$batch":
        return emu.error(inner, bad_request("Nested $batch requests are not supported.", "BadRequest"))
    return emu.dispatch(inner)
