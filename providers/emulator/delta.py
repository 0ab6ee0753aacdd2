"""Delta queries for users, groups (``members@delta``) and administrative units.

Tokens are opaque and carry ``(kind, since-seq, up-to-seq, offset, issued-time, $select)``. A full
sync lists every visible object (groups and AUs with all members in ``members@delta``); later
rounds replay the change log between two seqs: changed objects with their current properties,
member additions and removals (``"@removed": {"reason": "deleted"}``; an object created or restored
in the window lists all its members), and removed objects as
``{"id", "@removed": {"reason": "changed"}}`` (restorable) or ``"deleted"``. With replication lag,
changes younger than the lag are held back. Tokens older than ``delta_token_ttl`` (7 days) get
``410 Gone`` with code ``syncStateNotFound`` and a ``Location`` to restart from.

As strict as Graph about the query (graph-facts §6): ``$expand``, ``$top``, ``$orderby``,
``$search`` and ``$count`` are refused (400 ``Request_UnsupportedQuery``); ``$filter`` takes only
``id eq '...'`` terms joined by ``or`` (at most 50 for groups). The only relationship delta tracks is
``members`` (groups and administrative units): ``owners`` in ``$select`` is accepted and not tracked
(no ``owners@delta``, as the public reports of v1.0 describe), so a reader must read owners another way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from providers.emulator.common import select_for, visible
from providers.emulator.context import Emu
from providers.emulator.query import decode_token, encode_token
from providers.emulator.schema import ODATA_TYPE, render
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request

__all__ = ["delta_handler"]

_CONTEXT = {"user": "users", "group": "groups", "administrativeUnit": "administrativeUnits"}
#: query options delta refuses on directory objects (graph-facts §6)
_UNSUPPORTED = ("$expand", "$top", "$orderby", "$search", "$count", "$skip")
_ID_TERM = re.compile(r"\s*id\s+eq\s+'([^']+)'\s*", re.IGNORECASE)
#: the most ids a group delta's $filter may name
MAX_FILTER_IDS = 50


def _check_query(query: dict[str, str], kind: str) -> frozenset[str] | None:
    """Refuse what delta does not support; the ids of an ``id eq`` filter (None: no filter)."""
    for name in _UNSUPPORTED:
        if name in query:
            raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
    raw = query.get("$filter")
    if raw is None:
        return None
    terms = re.split(r"\s+or\s+", raw.strip(), flags=re.IGNORECASE)
    ids = []
    for term in terms:
        m = _ID_TERM.fullmatch(term)
        if m is None:
            raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
        ids.append(m.group(1))
    if kind == "group" and len(ids) > MAX_FILTER_IDS:
        raise bad_request("Unsupported Query.", "Request_UnsupportedQuery")
    return frozenset(ids)


def delta_handler(kind: str) -> Callable[[Emu, Req], Resp]:
    def handler(emu: Emu, req: Req) -> Resp:
        return _delta(emu, req, kind)

    return handler


def _check_token(emu: Emu, req: Req, data: dict[str, Any], kind: str) -> None:
    ttl = emu.profile.delta_token_ttl
    if data.get("k") != kind:
        raise GraphHttpError(400, "Request_BadRequest", "The delta token belongs to another resource.")
    issued = float(data.get("t", 0))
    if ttl is not None and emu.now - issued > ttl:
        raise GraphHttpError(
            410,
            "syncStateNotFound",
            "The sync state is not found or has expired: start a full sync without a token.",
            {"Location": f"{req.base}{req.path}"},
        )


def _delta(emu: Emu, req: Req, kind: str) -> Resp:
    tenant = emu.tenant
    tenant.log.activate()
    upto_now = tenant.log.seq_at(emu.now - emu.profile.replication_lag)
    q = req.query
    ids = _check_query(q, kind)
    flt = sorted(ids) if ids is not None else None
    if "$deltatoken" in q and q["$deltatoken"] == "latest":
        return _page(req, kind, [], None, {"k": kind, "s": upto_now, "t": emu.now, "sel": q.get("$select"),
                                           "ids": flt})
    if "$deltatoken" in q or "$skiptoken" in q:
        data = decode_token(q.get("$deltatoken") or q["$skiptoken"])
        _check_token(emu, req, data, kind)
        full = bool(data.get("f"))
        since = int(data.get("s", 0))
        upto = int(data["u"]) if "u" in data else upto_now
        offset = int(data.get("o", 0))
        raw_select = data.get("sel")
        flt = data.get("ids")
        issued = float(data.get("t", emu.now)) if "$skiptoken" in q else emu.now
    else:
        full, since, upto, offset, raw_select, issued = True, 0, upto_now, 0, q.get("$select"), emu.now
    sel_req = Req(req.method, req.path, {"$select": raw_select} if raw_select else {}, req.headers)
    select = select_for(emu, sel_req, [kind]) if raw_select else None
    with_members = kind != "user" and (select is None or "members" in select)
    # owners are accepted in $select and not tracked (no owners@delta)
    props_select = [s for s in select if s not in ("members", "owners")] if select else None
    only = frozenset(flt) if flt is not None else None
    if full:
        store = tenant.store(kind)
        listed = [i for i in tenant.sorted_ids(kind) if visible(emu, store[i]) and (only is None or i in only)
                  ]  # fmt: skip
        size = emu.profile.delta_page_size
        window = listed[offset : offset + size]
        values = [_full_item(emu, kind, i, props_select, with_members) for i in window]
        more = offset + size < len(listed)
    else:
        key = (kind, since, upto, raw_select, tenant.log.seq)
        cached = tenant.log.round_cache.get(key)
        if cached is None:
            cached = _changes(emu, kind, since, upto, props_select, with_members)
            tenant.log.round_cache.clear()
            tenant.log.round_cache[key] = cached
        items: list[dict[str, Any]] = list(cached)
        if only is not None:
            items = [i for i in items if i["id"] in only]
        size = emu.profile.delta_page_size
        values = items[offset : offset + size]
        more = offset + size < len(items)
    base_token: dict[str, Any] = {"k": kind, "t": issued, "sel": raw_select, "ids": flt}
    if more:
        nxt = {**base_token, "f": full, "s": since, "u": upto, "o": offset + size}
        return _page(req, kind, values, nxt, None)
    return _page(req, kind, values, None, {**base_token, "s": upto, "t": emu.now})


def _page(
    req: Req,
    kind: str,
    values: list[dict[str, Any]],
    nxt: dict[str, Any] | None,
    delta: dict[str, Any] | None,
) -> Resp:
    body: dict[str, Any] = {"@odata.context": f"{req.base}/$metadata#{_CONTEXT[kind]}"}
    link = f"{req.base}{req.path}?"
    if nxt is not None:
        body["@odata.nextLink"] = link + "$skiptoken=" + encode_token(nxt)
    if delta is not None:
        body["@odata.deltaLink"] = link + "$deltatoken=" + encode_token(delta)
    body["value"] = values
    return Resp(200, body)


def _member_ref(emu: Emu, mid: str) -> dict[str, Any]:
    obj = emu.tenant.find(mid)
    if obj is None and mid in emu.tenant.deleted:
        obj = emu.tenant.deleted[mid].obj
    kind = obj.kind if obj is not None else "user"
    return {"@odata.type": ODATA_TYPE[kind], "id": mid}


def _full_item(emu: Emu, kind: str, oid: str, select: list[str] | None, with_members: bool) -> dict[str, Any]:
    obj = emu.tenant.store(kind)[oid]
    out = render(kind, obj.props, obj.ext, select)
    if with_members and obj.members:
        out["members@delta"] = [_member_ref(emu, m) for m in obj.members]
    return out


def _changes(
    emu: Emu, kind: str, since: int, upto: int, select: list[str] | None, with_members: bool
) -> list[dict[str, Any]]:
    tenant = emu.tenant
    touched: dict[str, dict[str, str]] = {}
    created: dict[str, bool] = {}
    for _seq, _t, _k, oid, op, mid in tenant.log.since(kind, since, upto):
        ops = touched.setdefault(oid, {})
        if op in ("member+", "member-"):
            ops[mid] = op
        else:
            ops[""] = op
            if op == "new":
                created[oid] = True
    out: list[dict[str, Any]] = []
    store = tenant.store(kind)
    for oid in sorted(touched):
        ops = touched[oid]
        obj = store.get(oid)
        if obj is None:
            reason = "changed" if oid in tenant.deleted else "deleted"
            out.append({"id": oid, "@removed": {"reason": reason}})
            continue
        item = render(kind, obj.props, obj.ext, select)
        member_ops = {m: op for m, op in ops.items() if m}
        if with_members and created.get(oid):
            # created or restored in this window: its whole membership is news
            member_ops = {**member_ops, **dict.fromkeys(obj.members, "member+")}
        if with_members and member_ops:
            refs = []
            for mid in sorted(member_ops):
                ref = _member_ref(emu, mid)
                if member_ops[mid] == "member-":
                    ref["@removed"] = {"reason": "deleted"}
                refs.append(ref)
            item["members@delta"] = refs
        elif "" not in ops and not with_members:
            continue
        out.append(item)
    return out
