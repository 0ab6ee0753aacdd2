"""The deployment files read by the tools that read them: compose.yaml and the Kubernetes manifests
parsed (PyYAML; ``kubectl kustomize`` builds the manifests where kubectl is installed) and their
structure checked — every entra-sync container runs as a non-root user, secrets only by reference,
one beat, two workers — and the Dockerfile's stages and user."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
#: the names of settings whose value is a secret: they may only come by reference
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|STORE$|KEY$", re.I)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def _manifests() -> list[dict[str, Any]]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    docs = []
    for name in kust["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]
    return docs


def _deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_compose_starts_redis_postgres_the_console_one_beat_and_two_workers() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis", "postgres", "console", "beat", "worker"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["worker"]["command"][0] == "worker" and services["beat"]["command"][0] == "beat"
    assert services["console"]["command"][0] == "console"
    assert services["console"]["ports"] == ["127.0.0.1:8080:8080"]  # loopback: TLS in front


def test_compose_runs_entra_sync_as_non_root_with_secrets_by_reference() -> None:
    doc = _compose()
    declared = set(doc["secrets"])
    for name in ("console", "beat", "worker"):
        service = doc["services"][name]
        assert service["user"] == "10001:10001" and service["read_only"] is True, name
        assert service["build"] == "." and "/tmp" in service["tmpfs"]
        # the store's URL carries the database password: from an env file beside the secrets
        assert service["env_file"] == "./secrets/store.env"
        assert not [k for k in service["environment"] if "STORE" in k]
        assert set(service.get("secrets", [])) <= declared
    console = doc["services"]["console"]
    assert console["command"][-2:] == ["--key-file", "/run/secrets/console_key"]
    assert console["secrets"] == ["console_key"]
    for name, service in doc["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRETISH.search(key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
            assert "://" not in str(value) or "@" not in str(value), (name, key)  # no credentials in URLs
        for key in service.get("environment") or {}:
            assert key != "POSTGRES_PASSWORD", name
    for secret in doc["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    assert (ROOT / ".dockerignore").read_text().splitlines().count("secrets") == 1


def test_kubernetes_has_worker_and_console_deployments_and_exactly_one_beat() -> None:
    docs = _manifests()
    beat = _deployment(docs, "entra-sync-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert _deployment(docs, "entra-sync-worker")["spec"]["replicas"] >= 2
    assert _deployment(docs, "entra-sync-console")["spec"]["replicas"] >= 1
    assert not [d for d in docs if d["kind"] == "Secret"]  # secrets are made by the operator
    assert {d["kind"] for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())} == {"Secret"}
    for d in docs:
        if d["kind"] == "Deployment":
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"] == labels, d["metadata"]["name"]


def test_kubernetes_containers_run_as_non_root_with_secrets_from_kubernetes_secrets() -> None:
    docs = _manifests()
    secrets_named = set()
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "limits" in c["resources"]
            for e in c.get("env", []):
                if SECRETISH.search(e["name"]):
                    assert "value" not in e or e["name"].endswith("_FILE"), (d["metadata"]["name"], e)
                    if "valueFrom" in e:
                        secrets_named.add(e["valueFrom"]["secretKeyRef"]["name"])
        for v in pod.get("volumes", []):
            if "secret" in v:
                secrets_named.add(v["secret"]["secretName"])
                # root-owned files: the pod's user reads them through its group (fsGroup)
                assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
                assert v["secret"]["defaultMode"] & 0o040 and not v["secret"]["defaultMode"] & 0o007
    examples = {d["metadata"]["name"] for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text())}
    assert secrets_named == examples == {"entra-sync-store", "entra-sync-tenants", "entra-sync-console"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert not [k for k in config["data"] if SECRETISH.search(k)]
    assert "@" not in config["data"]["ENTRA_SYNC_FLEET_BROKER"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_builds_the_kustomization() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out.stdout) if d)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Deployment", "Deployment", "Namespace",
                     "Service", "Service"]  # fmt: skip
    assert all(d["metadata"].get("namespace") == "entra-sync" for d in yaml.safe_load_all(out.stdout)
               if d and d["kind"] != "Namespace")  # fmt: skip


def test_the_image_is_slim_two_staged_and_runs_as_an_unprivileged_user() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / "Dockerfile").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("-slim" in f for f in froms)
    users = [ln for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] == "USER 10001:10001"
    assert lines.index(users[-1]) > max(i for i, ln in enumerate(lines) if ln.startswith("RUN "))
    assert "--no-cache-dir" in " ".join(lines) and 'ENTRYPOINT ["entra-sync"]' in lines
    assert not [ln for ln in lines if re.search(r"ENV .*(PASSWORD|SECRET|TOKEN)", ln)]
