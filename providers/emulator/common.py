"""Helpers shared by the resource handlers: lookups, visibility, binds, body checks and paged lists."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from providers.emulator.context import Emu
from providers.emulator.query import (
    decode_token,
    encode_token,
    eq_lookup,
    parse_filter,
    parse_select,
    parse_top,
)
from providers.emulator.schema import KNOWN_PROPS, WRITABLE_PROPS, render, value_ok
from providers.emulator.tenant import DirObject
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request, not_found

__all__ = [
    "bind_ids",
    "check_body",
    "collection",
    "count_of",
    "get_obj",
    "list_objects",
    "odata_id",
    "page_ids",
    "select_for",
    "visible",
    "wants_count",
]

_BIND_RE = re.compile(
    r"/(?:users|groups|directoryObjects|devices|servicePrincipals|contacts|orgContacts)"
    r"(?:/|\(')([^/')?]+)'?\)?/?$",
    re.IGNORECASE,
)


def visible(emu: Emu, obj: DirObject) -> bool:
    """False while a new object is still replicating (hidden from list, filter and delta)."""
    lag = emu.profile.replication_lag
    return lag <= 0 or emu.age(obj.created) >= lag


def get_obj(emu: Emu, kind: str, object_id: str) -> DirObject:
    obj = emu.tenant.store(kind).get(object_id)
    if obj is None:
        raise not_found(object_id)
    return obj


def odata_id(url: Any) -> str:
    """The object id in an ``@odata.id`` / bind URL (``.../users/{id}``, ``.../users('{id}')``)."""
    if not isinstance(url, str):
        raise bad_request("Invalid object reference: expected a URL string.")
    m = _BIND_RE.search(url)
    if not m:
        raise bad_request(f"Invalid object identifier '{url}'.")
    return m.group(1)


def bind_ids(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be an array of object URLs.")
    return [odata_id(v) for v in value]


_CANONICAL: dict[str, dict[str, str]] = {
    kind: {name.lower(): name for name in (*names, "members", "owners")}
    for kind, names in KNOWN_PROPS.items()
}


def known_prop(emu: Emu, kinds: Sequence[str]) -> Callable[[str], str | None]:
    """Map a property name (any case) to its canonical spelling for one of ``kinds``, or None."""

    def known(name: str) -> str | None:
        if name.startswith("extension_"):
            return name if emu.tenant.extension(name) is not None else None
        for kind in kinds:
            canonical = _CANONICAL[kind].get(name.lower())
            if canonical is not None and (kind != "user" or canonical not in ("members", "owners")):
                return canonical
        return None

    return known


def select_for(emu: Emu, req: Req, kinds: Sequence[str]) -> list[str] | None:
    return parse_select(req.query.get("$select"), known_prop(emu, kinds))


def check_body(emu: Emu, kind: str, body: Any, *, allowed_extra: Iterable[str] = ()) -> dict[str, Any]:
    """The request body as a dict; unknown properties give 400 (if the profile says so).

    Extension values are checked against their definition (target type, data type).
    """
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.", "BadRequest")
    extra = set(allowed_extra) | {"@odata.type"}
    target = {"group": "Group", "administrativeUnit": "AdministrativeUnit", "user": "User"}[kind]
    for name, value in body.items():
        if name.startswith("extension_"):
            definition = emu.tenant.extension(name)
            if definition is None or target not in definition["targetObjects"]:
                raise bad_request(
                    f"Property '{name}' does not exist as a declared property or extension property."
                )
            _check_ext_value(name, definition, value)
        elif name in WRITABLE_PROPS[kind]:
            if not value_ok(name, value):
                raise bad_request(f"Invalid value specified for property '{name}' of resource '{target}'.")
        elif name not in extra and emu.profile.reject_unknown_properties:
            raise bad_request(
                f"Property '{name}' does not exist as a declared property or extension property."
            )
    return body


def _check_ext_value(name: str, definition: dict[str, Any], value: Any) -> None:
    if value is None:
        return
    values = value if definition["isMultiValued"] else [value]
    if definition["isMultiValued"] and not isinstance(value, list):
        raise bad_request(f"Extension '{name}' is multi-valued: send an array.")
    kinds = {
        "String": str,
        "Boolean": bool,
        "Integer": int,
        "LargeInteger": int,
        "DateTime": str,
        "Binary": str,
    }
    expected = kinds.get(definition["dataType"], str)
    for v in values:
        if not isinstance(v, expected) or (isinstance(v, str) and len(v) > 256):
            raise bad_request(f"Invalid value for extension '{name}' of type {definition['dataType']}.")


def next_link(req: Req, token: str) -> str:
    query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
    query["$skiptoken"] = token
    return f"{req.base}{req.path}?{urlencode(query, quote_via=quote, safe='$,()')}"


def page_ids(
    req: Req, ids: Sequence[str], keep: Callable[[str], bool], top: int
) -> tuple[list[str], str | None]:
    """One page of sorted ``ids`` that pass ``keep``, after the skip token's cursor.

    Returns the page and the next token (None on the last page).
    """
    start = 0
    raw = req.query.get("$skiptoken")
    if raw:
        after = decode_token(raw).get("a")
        if not isinstance(after, str):
            raise bad_request("Invalid skip token.")
        start = bisect.bisect_right(ids, after)
    out: list[str] = []
    i = start
    n = len(ids)
    while i < n and len(out) < top:
        oid = ids[i]
        if keep(oid):
            out.append(oid)
        i += 1
    more = any(keep(ids[j]) for j in range(i, n)) if i < n else False
    return out, (encode_token({"a": out[-1]}) if more and out else None)


def wants_count(req: Req) -> bool:
    """``$count=true`` (first page only); needs ``ConsistencyLevel: eventual`` as on Graph."""
    if req.query.get("$count", "").lower() != "true":
        return False
    if req.headers.get("consistencylevel", "").lower() != "eventual":
        raise bad_request(
            "$count requires the header 'ConsistencyLevel: eventual'.", "Request_UnsupportedQuery"
        )
    return "$skiptoken" not in req.query


def count_of(ids: Sequence[str], keep: Callable[[str], bool]) -> int:
    return sum(1 for i in ids if keep(i))


def collection(
    req: Req, context: str, values: list[dict[str, Any]], token: str | None, count: int | None = None
) -> Resp:
    body: dict[str, Any] = {"@odata.context": f"{req.base.rsplit('/v1.0', 1)[0]}/v1.0/$metadata#{context}"}
    if count is not None:
        body["@odata.count"] = count
    if token:
        body["@odata.nextLink"] = next_link(req, token)
    body["value"] = values
    return Resp(200, body)


def list_objects(emu: Emu, req: Req, kind: str, context: str) -> Resp:
    """``GET /users``, ``/groups``, ``/directory/administrativeUnits`` with select, filter, top, paging."""
    tenant = emu.tenant
    select = select_for(emu, req, [kind])
    top = parse_top(req.query.get("$top"), 100, 999)
    raw_filter = req.query.get("$filter")
    store = tenant.store(kind)
    fast = eq_lookup(raw_filter) if kind == "user" else None
    if fast and fast[0] in tenant.user_index:
        hit = tenant.user_index[fast[0]].get(fast[1].lower())
        ids: Sequence[str] = [hit] if hit else []
        pred = None
    else:
        ids = tenant.sorted_ids(kind)
        pred = parse_filter(raw_filter, known_prop(emu, [kind]))

    def keep(oid: str) -> bool:
        obj = store[oid]
        if not visible(emu, obj):
            return False
        if pred is None:
            return True
        return pred(lambda name: obj.ext.get(name) if name.startswith("extension_") else obj.props.get(name))

    count = count_of(ids, keep) if wants_count(req) else None
    page, token = page_ids(req, ids, keep, top)
    values = [render(kind, store[i].props, store[i].ext, select) for i in page]
    if "$expand" in req.query and kind == "group":
        for v, i in zip(values, page, strict=True):
            v["members"] = expand_members(emu, store[i])
    return collection(req, context, values, token, count)


def expand_members(emu: Emu, obj: DirObject) -> list[dict[str, Any]]:
    """``$expand=members``: at most ``expand_cap`` members (20 on Graph), no nextLink."""
    cap = emu.profile.expand_cap
    out: list[dict[str, Any]] = []
    for mid in obj.members:
        if cap is not None and len(out) >= cap:
            break
        member = emu.tenant.find(mid)
        if member is not None:
            out.append(render(member.kind, member.props, member.ext, None, with_type=True))
    return out


def require(cond: bool, status: int, code: str, message: str) -> None:
    if not cond:
        raise GraphHttpError(status, code, message)
