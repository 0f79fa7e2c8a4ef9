"""A real uvicorn server on 127.0.0.1 in a background thread, for the API and HTTP-backend tests."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class LiveServer:
    """`with LiveServer(app) as server: httpx.get(server.url + "/health")`; `stop()`/`start()` keep the port."""

    def __init__(self, app, port: int = 0):
        self.app = app
        self._sock = _bound_socket(port)  # bound now: the port is ours, no race with other tests
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> "LiveServer":
        if self._sock is None:
            self._sock = _bound_socket(self.port)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"uvicorn did not answer /health on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(15)
            self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


class ServerProcess:
    """A server command in a process of its own on a free port of 127.0.0.1, started and waited for until its
    `/health` answers 200; stopped on exit."""

    what = "the server"

    def __init__(self, command: list[str], env: dict[str, str], timeout: float = 90):
        import subprocess

        with _bound_socket() as sock:
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([*command, "--port", str(self.port)], cwd=REPO, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.what} did not start: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.what} did not answer /health within {timeout:g} s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ApiProcess(ServerProcess):
    """`python -m scoring api` in a process of its own:
    `with ApiProcess(workdir, {"SCORING_API_TOKENS": "t"}) as api: httpx.get(api.url + "/health")`."""

    what = "the API"

    def __init__(self, workdir, env: dict[str, str], timeout: float = 90):
        import os
        import sys

        full = {**os.environ, "SCORING_API_ACCESS_LOG": "0", **env}
        if "SCORING_API_TOKENS_FILE" not in env:
            full.pop("SCORING_API_TOKENS_FILE", None)
        super().__init__([sys.executable, "-m", "scoring", "api", "--workdir", str(workdir.root)], full, timeout)
