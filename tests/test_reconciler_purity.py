"""The pure core must not import the I/O edges (httpx, msal)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import reconciler


def test_core_modules_import_neither_httpx_nor_msal() -> None:
    modules = [
        m.name
        for m in pkgutil.walk_packages(reconciler.__path__, "reconciler.")
        if not m.name.startswith("reconciler.cli")
    ]
    assert "reconciler.model" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('httpx', 'msal'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"
