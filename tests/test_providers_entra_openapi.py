"""Every request the Entra provider sends validates against Microsoft's Graph OpenAPI description.

The descriptions are vendored, trimmed, in ``tests/fixtures/openapi/`` (see its README). The small
validator below matches method + path template, checks query parameters (``$select`` names against
the documented enum), validates JSON bodies with jsonschema, and unwraps ``$batch`` bodies so each
sub-request is validated on its own (``$batch`` itself is described nowhere; its rules are checked
here: ≤ 20 requests, unique ids, relative urls, Content-Type with a body, dependsOn to known ids).
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import jsonschema
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openapi"
_SHORT_ACTIONS = {"archive", "unarchive", "clone", "add", "remove", "getByIds", "restore"}
_SERVER_TOKENS = {"$skiptoken", "$deltatoken", "$skip"}  # only ever sent back from a server's nextLink
MAX_BINDS = 20


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    literal_weight: int
    params: Mapping[str, Mapping[str, Any]]
    body_schema: Mapping[str, Any] | None
    body_required: bool
    components: Mapping[str, Any]


def _fix_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable`` becomes a null type, ``additionalProperties:
    {type: object}`` becomes ``true`` (external-data.md §3.2), trimmed refs accept anything."""
    if isinstance(node, list):
        return [_fix_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "x-trimmed" in node:
        return {}
    out = {k: _fix_schema(v) for k, v in node.items() if k != "nullable"}
    if out.get("additionalProperties") == {"type": "object"}:
        out["additionalProperties"] = True
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    rx = "".join("[^/]+?" if p.startswith("{") else re.escape(p) for p in parts if p)
    return re.compile(f"^{rx}$")


class GraphOpenAPI:
    def __init__(self, folder: Path = FIXTURES) -> None:
        self.operations: list[Operation] = []
        # current property names (2026 CSDL): the 2023 OpenAPI lacks newer ones for $select
        self.csdl: dict[str, list[str]] = json.loads((folder / "csdl-properties.json").read_text("utf-8"))
        for f in sorted(folder.glob("*.json")):
            if f.name == "csdl-properties.json":
                continue
            doc = json.loads(f.read_text(encoding="utf-8"))
            components = _fix_schema(doc.get("components", {}))
            for template, item in doc["paths"].items():
                for method, op in item.items():
                    params = {p["name"]: p for p in op.get("parameters", [])}
                    schema = None
                    rb = op.get("requestBody")
                    if rb:
                        schema = _fix_schema(rb["content"]["application/json"]["schema"])
                    weight = len(re.sub(r"\{[^}]+\}", "", template))
                    self.operations.append(Operation(
                        method.upper(), template, _pattern(template), weight, params, schema,
                        bool(rb and rb.get("required")), components,
                    ))
        self.operations.sort(key=lambda o: -o.literal_weight)

    @staticmethod
    def _canonical(path: str) -> str:
        path = unquote(path)
        if path.startswith("/v1.0/"):
            path = path[len("/v1.0"):]
        segments = path.rstrip("/").split("/")
        if len(segments) > 2 and segments[-1] in _SHORT_ACTIONS:
            segments[-1] = "microsoft.graph." + segments[-1]
        return "/".join(segments)

    def find(self, method: str, path: str) -> Operation | None:
        canon = self._canonical(path)
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(canon):
                return op
        return None

    def problems(self, method: str, url: str, body: Any, *, in_batch: bool = False) -> list[str]:
        """Everything wrong with one request (empty when it validates)."""
        parts = urlsplit(url)
        where = f"{method} {parts.path}"
        if parts.path.rstrip("/").endswith("$batch"):
            if in_batch:
                return [f"{where}: $batch inside $batch"]
            return self._batch_problems(method, body)
        op = self.find(method, parts.path)
        if op is None:
            return [f"{where}: no such operation in the Graph OpenAPI description"]
        out = [f"{where}: {p}" for p in self._query_problems(op, parts.query)]
        if op.body_schema is None:
            if body not in (None, b"", ""):
                out.append(f"{where}: sends a body but the operation takes none")
        elif body is None:
            if op.body_required:
                out.append(f"{where}: the operation requires a body")
        else:
            root = {**op.body_schema, "components": op.components}
            validator = jsonschema.Draft7Validator(root)
            out += [f"{where}: body {'/'.join(map(str, e.path))}: {e.message}"
                    for e in validator.iter_errors(body)]
            out += [f"{where}: {p}" for p in _bind_problems(method, op.template, body)]
        return out

    def _query_problems(self, op: Operation, query: str) -> Iterator[str]:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name in _SERVER_TOKENS:
                continue
            param = op.params.get(name)
            if param is None or param.get("in") != "query":
                yield f"query parameter {name} is not described"
                continue
            schema = param.get("schema", {})
            if schema.get("type") == "array":
                allowed = set(schema.get("items", {}).get("enum") or ())
                if name == "$select":
                    allowed |= set(self.csdl.get(_entity_type(op.template), ()))
                for item in value.split(","):
                    # directory extensions are tenant-specific, so never in the enum
                    if allowed and item not in allowed and not item.startswith("extension_"):
                        yield f"{name}: {item!r} is not a documented value"
            elif schema.get("type") == "integer":
                if not value.isdigit() or int(value) < schema.get("minimum", 0):
                    yield f"{name}: {value!r} is not a valid integer"
            elif schema.get("type") == "boolean" and value not in ("true", "false"):
                yield f"{name}: {value!r} is not a boolean"

    def _batch_problems(self, method: str, body: Any) -> list[str]:
        if method != "POST":
            return [f"{method} /$batch: only POST is allowed"]
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return ["POST /$batch: body must be {'requests': [...]}"]
        reqs = body["requests"]
        out = []
        if not 1 <= len(reqs) <= 20:
            out.append(f"POST /$batch: {len(reqs)} requests (1..20 allowed)")
        ids = [str(r.get("id", "")).lower() for r in reqs]
        if len(set(ids)) != len(ids) or "" in ids:
            out.append("POST /$batch: request ids must be present and unique")
        for r in reqs:
            url = str(r.get("url", ""))
            if "://" in url or not url.startswith("/"):
                out.append(f"POST /$batch: item {r.get('id')}: url must be relative, got {url!r}")
            if "body" in r and not any(k.lower() == "content-type" for k in (r.get("headers") or {})):
                out.append(f"POST /$batch: item {r.get('id')}: a body needs a Content-Type header")
            for dep in r.get("dependsOn", ()):
                if str(dep).lower() not in ids:
                    out.append(f"POST /$batch: item {r.get('id')}: dependsOn unknown id {dep}")
            out += [f"[batch item {r.get('id')}] {p}"
                    for p in self.problems(str(r.get("method", "")), url, r.get("body"), in_batch=True)]
        return out


_TYPE_OF_SEGMENT = {
    "users": "user", "groups": "group", "administrativeUnits": "administrativeUnit", "teams": "team",
    "members": "directoryObject", "owners": "directoryObject", "extensionProperties": "extensionProperty",
}


def _entity_type(template: str) -> str:
    """The entity type a path returns, from its last collection segment."""
    for segment in reversed(template.split("/")):
        if not segment.startswith("{"):
            return _TYPE_OF_SEGMENT.get(segment, "")
    return ""


def _bind_problems(method: str, template: str, body: Any) -> Iterator[str]:
    if not isinstance(body, dict):
        return
    binds = {k: v for k, v in body.items() if k.endswith("@odata.bind")}
    total = 0
    for k, v in binds.items():
        values = v if isinstance(v, list) else [v]
        if not all(isinstance(x, str) and x.startswith("http") for x in values):
            yield f"{k}: binds must be absolute URLs"
        total += len(values) if isinstance(v, list) else 0
    if total > MAX_BINDS:
        yield f"{total} relationships bound in one request (Graph allows {MAX_BINDS})"


@dataclass
class Recorded:
    method: str
    url: str
    body: Any


class RecordingTransport(httpx.BaseTransport):
    """Wraps another transport and keeps every request it passes on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[Recorded] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        body = json.loads(content) if content else None
        self.requests.append(Recorded(request.method, str(request.url), body))
        return self.inner.handle_request(request)


@pytest.fixture(scope="module")
def spec() -> GraphOpenAPI:
    return GraphOpenAPI()


# -- the validator itself -------------------------------------------------------------------------

G = "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", f"{G}/groups", {"displayName": "7X", "mailEnabled": False, "mailNickname": "7x",
                             "securityEnabled": True, "groupTypes": [], "description": None,
                             "members@odata.bind": [f"{G}/directoryObjects/1"]}),
    ("PATCH", f"{G}/groups/abc", {"members@odata.bind": [f"{G}/directoryObjects/{n}" for n in range(20)]}),
    ("DELETE", f"{G}/groups/abc/members/def/$ref", None),
    ("POST", f"{G}/directory/administrativeUnits/a/members/$ref", {"@odata.id": f"{G}/directoryObjects/u"}),
    ("POST", f"{G}/teams/t/archive", {}),
    ("GET", f"{G}/groups?$select=id,displayName,extension_abc_key&$top=999", None),
    ("POST", f"{G}/applications(appId='a-b')/extensionProperties",
     {"name": "k", "dataType": "String", "isMultiValued": False, "targetObjects": ["Group"]}),
])
def test_validator_accepts_documented_requests(spec: GraphOpenAPI, method: str, url: str, body: Any) -> None:
    assert spec.problems(method, url, body) == []


@pytest.mark.parametrize(("method", "url", "body", "needle"), [
    ("DELETE", f"{G}/groups/abc/members/def", None, "no such operation"),
    ("PUT", f"{G}/groups/abc/members/$ref", {"@odata.id": "x"}, "no such operation"),
    ("POST", f"{G}/groups", {"displayName": "7X", "mailEnabled": "no"}, "not of type 'boolean'"),
    ("POST", f"{G}/groups/g/members/$ref", {"@odata.id": 123}, "not of type 'string'"),
    ("PATCH", f"{G}/groups/g", {"members@odata.bind": [f"{G}/directoryObjects/{n}" for n in range(21)]},
     "21 relationships"),
    ("GET", f"{G}/groups?$select=id,displayNam", None, "not a documented value"),
    ("GET", f"{G}/groups?$expandx=members", None, "not described"),
    ("POST", f"{G}/$batch", {"requests": [{"id": "1", "method": "GET", "url": "/groups"}] * 2}, "unique"),
    ("POST", f"{G}/$batch", {"requests": [{"id": str(i), "method": "GET", "url": "/groups"}
                                          for i in range(21)]}, "21 requests"),
    ("POST", f"{G}/$batch", {"requests": [{"id": "1", "method": "DELETE", "url": "/groups/g/members/u"}]},
     "no such operation"),
    ("POST", f"{G}/$batch", {"requests": [{"id": "1", "method": "POST", "url": "/groups/g/owners/$ref",
                                          "body": {"@odata.id": "x"}}]}, "Content-Type"),
])
def test_validator_rejects_what_graph_would(
    spec: GraphOpenAPI, method: str, url: str, body: Any, needle: str
) -> None:
    problems = spec.problems(method, url, body)
    assert any(needle in p for p in problems), problems


# -- every request the provider sends -------------------------------------------------------------

def _clone(x: Any) -> Any:
    return copy.deepcopy(x)


@pytest.mark.parametrize("realism", ["ideal", "lost-creates-and-young-groups", "realistic"])
def test_every_provider_request_validates(spec: GraphOpenAPI, realism: str) -> None:
    """Drive the marker setup, a read and every write (plus the retry paths: marker lookups after
    lost creates, ``$ref`` fallbacks, Team 404 retries) and validate each request sent."""
    from providers.emulator import EmulatorTransport, FaultRule, Profile, Tenant
    from providers.entra.client import GraphClient
    from providers.entra.directory import EntraDirectory
    from providers.entra.marker import ensure_marker
    from reconciler.clock import VirtualClock
    from reconciler.model import AdministrativeUnit, DesiredState, Group
    from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields

    profile = {
        "ideal": Profile.ideal(),
        "lost-creates-and-young-groups": Profile.ideal().with_(
            faults=(FaultRule(route="/groups", method="POST", lost_response_rate=1.0),
                    FaultRule(route="/directory/administrativeUnits", method="POST", lost_response_rate=1.0)),
            replication_lag=5.0, new_group_member_lag=3.0, team_min_group_age=900.0),
        "realistic": Profile.realistic(seed=4),
    }[realism]
    app = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    clock = VirtualClock()
    tenant = Tenant(seed=1, clock=clock)
    users = [tenant.add_user(f"u{n}@oak.example", display_name=f"U {n}") for n in range(45)]
    recorder = RecordingTransport(EmulatorTransport(tenant, clock=clock, profile=profile))
    http = httpx.Client(transport=recorder, base_url=G, headers={"Authorization": "Bearer x"})
    client = GraphClient(http, clock=clock, rng=random.Random(1))
    marker = ensure_marker(client, app)
    d = EntraDirectory(client, marker, clock=clock)
    desired = DesiredState(groups=(Group("g:1", "7A", "7a"),))
    d.read(desired)
    au = d.create_administrative_unit(AdministrativeUnit("au:1", "Year 7", "Y7"), users[:3]).object_id
    g = d.create_group(Group("g:1", "7A", "7a", description="d"), users[:2], users[2:40]).object_id
    s = d.create_group(Group("g:2", "Staff", "staff", kind="security"), users[:25], users[40:]).object_id
    d.create_team(g, "standard")  # deferred on a young group (404 retries) or created
    d.add_group_members(g, users[:44])
    d.remove_group_members(g, users[30:44])
    d.add_group_owners(g, users[3:5])
    d.remove_group_owners(g, users[4:5])
    d.add_administrative_unit_members(au, [g, *users[3:6]])
    d.remove_administrative_unit_members(au, [users[5]])
    d.update_group(g, GroupFields(display_name="7A Maths", description=None, visibility="Public"))
    d.update_administrative_unit(au, AdministrativeUnitFields(display_name="Year 7 (2026)"))
    clock.advance(3600)
    d.create_team(g, "educationClass")  # created, or 409 "already exists" and a re-read
    clock.advance(3600)
    d.read(desired)
    d.archive_team(g)
    d.unarchive_team(g)
    d.delete_group(s)
    d.delete_administrative_unit(au)

    methods = {(r.method, urlsplit(r.url).path.split("/")[2]) for r in recorder.requests}
    assert len(recorder.requests) > 20 and ("POST", "$batch") in methods
    if realism == "lost-creates-and-young-groups":
        assert any("$filter" in r.url for r in recorder.requests)  # marker lookups were sent
    problems = [p for r in recorder.requests for p in spec.problems(r.method, r.url, _clone(r.body))]
    assert problems == []
