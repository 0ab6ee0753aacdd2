"""Serve the emulator over plain HTTP on 127.0.0.1 at ``/v1.0/...`` (for curl, the CLI, the demo).

Any bearer token is accepted (unless the profile pins tokens); a missing one gets 401.

Saving: a write (POST, PATCH, PUT, DELETE) that did not fail marks the tenant dirty; a background
saver writes it back to ``state_path`` (atomically) at most once per ``save_interval`` seconds (or
4x the last save's duration, if longer), so a burst of writes costs one save, not one per write;
where the OS can fork, a forked save process encodes and writes it, so serving does not wait for
it (:meth:`EmulatorServer.save`). :meth:`EmulatorServer.stop` and :meth:`EmulatorServer.flush` save
what is pending. A killed process loses the writes since the last save finished, never the file;
``save_interval=0`` saves after every write (the old way).
A dropped-connection fault closes the socket without an answer. Uses the real clock unless given another.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from providers.emulator.engine import Engine
from providers.emulator.persist import finish_snapshot, temp_beside, to_json, write_snapshot
from providers.emulator.profile import Profile
from providers.emulator.tenant import Tenant
from reconciler.clock import Clock, SystemClock

__all__ = ["EmulatorServer"]

log = logging.getLogger(__name__)
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
FORK = hasattr(os, "fork")  # save in a forked process (POSIX); in this process elsewhere


class EmulatorServer:
    """``server = EmulatorServer(tenant, port=0, state_path="t.json")``, then ``start()`` / ``stop()``."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        port: int = 0,
        state_path: str | os.PathLike[str] | None = None,
        profile: Profile | None = None,
        clock: Clock | None = None,
        save_interval: float = 1.0,
    ) -> None:
        self.engine = Engine(tenant, clock or SystemClock(), profile)
        self.state_path = state_path
        self.save_interval = save_interval
        self.saves = 0  # tenant files written (for benchmarks and tests)
        self.last_save_seconds = 0.0
        self._dirty = False
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._saver: threading.Thread | None = None
        self._save_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="graph-emulator",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`shutdown` (from another thread) or KeyboardInterrupt."""
        self.httpd.serve_forever(poll_interval=0.05)

    def shutdown(self) -> None:
        """Make :meth:`serve_forever` return (call from another thread)."""
        self.httpd.shutdown()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close_saver()

    def save(self) -> None:
        """Write the tenant file now, one consistent state (taken under the engine lock).

        Where the OS can fork, the state is taken by forking a save process (copy-on-write, a few
        milliseconds however big the tenant) and that process encodes and writes the file while
        this one goes on serving: encoding a trust's tenant takes seconds of CPU that would hold
        the GIL. Elsewhere the tenant is copied under the lock and written outside it.
        """
        if self.state_path is None:
            return
        with self._save_lock:
            started = time.perf_counter()
            if FORK:
                self._save_in_child(self.state_path)
            else:
                with self.engine.lock:
                    self._dirty = False
                    data = to_json(self.engine.tenant)
                write_snapshot(data, self.state_path)
            self.last_save_seconds = time.perf_counter() - started
            self.saves += 1

    def _save_in_child(self, path: str | os.PathLike[str]) -> None:
        fd, tmp = temp_beside(path)
        try:
            with self.engine.lock:
                try:
                    pid = os.fork()
                except OSError:
                    os.close(fd)
                    raise
                self._dirty = False
                if pid == 0:  # the save process: write, rename, leave without any cleanup
                    code = 1
                    try:
                        finish_snapshot(fd, tmp, to_json(self.engine.tenant), path)
                        code = 0
                    except BaseException:
                        os.write(2, traceback.format_exc().encode(errors="replace"))
                    finally:
                        os._exit(code)
            os.close(fd)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                self._dirty = True  # saved again at the next round
                raise OSError(f"the save process for {path} failed (exit status {code})")
        finally:
            Path(tmp).unlink(missing_ok=True)  # already renamed unless the save failed

    def flush(self) -> None:
        """Save now if a write is pending."""
        if self._dirty:
            self.save()

    def written(self) -> None:
        """A write was applied: save now (``save_interval`` 0) or let the saver batch it."""
        if self.state_path is None:
            return
        if self.save_interval <= 0:
            self.save()
            return
        self._dirty = True
        if self._saver is None:
            with self._save_lock:
                if self._saver is None:
                    self._saver = threading.Thread(target=self._save_loop, name="emulator-saver", daemon=True)
                    self._saver.start()
        self._wake.set()

    def close_saver(self) -> None:
        """Stop the background saver and save what is pending."""
        self._closing.set()
        self._wake.set()
        if self._saver is not None:
            self._saver.join(timeout=30)
        self.flush()

    def _save_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait()
            if self._closing.is_set():
                return
            # Let a burst of writes gather; a big tenant (seconds per save) waits longer, so saving
            # never takes more than about a fifth of the time.
            self._closing.wait(max(self.save_interval, 4 * self.last_save_seconds))
            self._wake.clear()  # writes during the save below wake the loop again
            if self._closing.is_set():
                return
            try:
                self.flush()
            except OSError:
                log.exception("emulator: saving %s failed", self.state_path)


def _handler_class(server: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Status line, headers and body leave in one send (a buffered writer, flushed after each
        # request) with Nagle off: two small writes would wait for the client's delayed ACK,
        # about 40 ms a response on loopback.
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
            host = self.headers.get("Host") or f"127.0.0.1:{server.port}"
            headers = {k.lower(): v for k, v in self.headers.items()}
            outcome = server.engine.handle(
                self.command, split.path, dict(parse_qsl(split.query)), headers, body, f"http://{host}/v1.0"
            )
            failed = outcome.resp is not None and outcome.resp.status >= 400
            if self.command in WRITES and not failed:
                server.written()
            if outcome.delay > 0:
                server.engine.clock.sleep(outcome.delay)
            if outcome.resp is None or outcome.drop is not None:
                self.close_connection = True
                return
            resp = outcome.resp
            content = b"" if resp.body is None else json.dumps(resp.body).encode()
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("emulator " + format, *args)

    return Handler
