"""Read-only Engine API calls used by discovery.

On a local `unix://` engine they go straight over the socket with http.client: importing
the docker SDK (requests, paramiko...) costs more than a whole discovery pass, and a plan
that changes nothing should not pay for it. Every other engine (ssh://, tcp://) is read
through the SDK's low-level client. Creating containers, networks and volumes on a local
engine goes over the socket too (see provider.LocalCreate); every other change goes through
the SDK.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import urllib.parse
from typing import Any

from decl.errors import ConnectionFailed


class EngineNotFound(Exception):
    """The engine answered 404 (no such container, image, network...)."""


class EngineError(Exception):
    """The engine answered with an error status; `message` is its own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Reader:
    """The calls discovery makes (the same names as the SDK's APIClient)."""

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a path of the Engine API, decoded from JSON."""
        raise NotImplementedError

    _version: dict[str, Any] | None = None

    def version(self) -> dict[str, Any]:
        """GET /version (asked once, then remembered)."""
        if self._version is None:
            self._version = dict(self.get("/version"))
        return self._version

    @property
    def is_podman(self) -> bool:
        """Whether the engine is Podman's docker-compatible service."""
        return any("podman" in (c.get("Name") or "").lower()
                   for c in self.version().get("Components") or [])

    def containers(self) -> list[dict[str, Any]]:
        """Every container, running or not (list summaries, no inspection)."""
        return list(self.get("/containers/json", {"all": "1"}) or [])

    def inspect_container(self, ident: str) -> dict[str, Any]:
        """Inspect data of one container."""
        return dict(self.get(f"/containers/{_quote(ident)}/json"))

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """Inspect data of a local image (EngineNotFound when absent)."""
        return dict(self.get(f"/images/{_quote(ref)}/json"))

    def image_config(self, image_id: str) -> dict[str, Any] | None:
        """`Id` and `Config` of an image named by its ID, None when it is gone.

        An image ID is the digest of the image's config, so what it names cannot change:
        the answer is remembered for the reader's life (one inspect per image and run, not
        one per container observed). Only the immutable part is kept (no tags, no digests).
        """
        if not _IMAGE_ID.fullmatch(image_id):
            try:
                attrs = self.inspect_image(image_id)
            except EngineNotFound:
                return None
            return {"Id": attrs.get("Id"), "Config": attrs.get("Config")}
        cache: dict[str, dict[str, Any]] = self.__dict__.setdefault("_image_configs", {})
        known = cache.get(image_id)
        if known is None:
            with _IMAGE_LOCK:  # the first asker inspects; the others wait for its answer
                known = cache.get(image_id)
                if known is None:
                    try:
                        attrs = self.inspect_image(image_id)
                    except EngineNotFound:
                        return None
                    known = {"Id": attrs.get("Id"), "Config": attrs.get("Config")}
                    cache[image_id] = known
        return known

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        """What the registry says a reference points to now."""
        return dict(self.get(f"/distribution/{_quote(ref)}/json"))

    def networks(self) -> list[dict[str, Any]]:
        """Every network."""
        return list(self.get("/networks") or [])

    def volumes(self) -> list[dict[str, Any]]:
        """Every volume."""
        return list((self.get("/volumes") or {}).get("Volumes") or [])


_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")
_IMAGE_LOCK = threading.Lock()


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="/:@")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class UnixReader(Reader):
    """Engine API over a unix socket, one keep-alive connection per thread."""

    def __init__(self, path: str, host: str, timeout: float = 60) -> None:
        self.path = path
        self.host = host
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> _UnixHTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _UnixHTTPConnection(self.path, self.timeout)
            self._local.conn = conn
        return conn

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET over the socket; retried once on a dropped keep-alive connection."""
        return self.call("GET", path, params)

    def post(self, path: str, params: dict[str, str] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        """POST a JSON body (never retried: a write must not happen twice)."""
        return self.call("POST", path, params, body)

    def call(self, method: str, path: str, params: dict[str, str] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        """One request over the socket, decoded from JSON; EngineNotFound / EngineError."""
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Host": "docker"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in ((1, 2) if method == "GET" else (2,)):
            conn = self._connection()
            try:
                conn.request(method, url, body=payload, headers=headers)
                response = conn.getresponse()
                body_bytes = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
                    raise ConnectionFailed(self.host, "docker",
                                           f"cannot reach the engine at unix://{self.path}: "
                                           f"{type(exc).__name__}: {exc}") from None
        if response.status == 404:
            raise EngineNotFound(_message(body_bytes))
        if response.status >= 400:
            raise EngineError(response.status, _message(body_bytes))
        return json.loads(body_bytes) if body_bytes else None


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()


class SdkReader(Reader):
    """The same calls through the docker SDK's APIClient (ssh://, tcp://...)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET through the SDK, with its errors turned into ours."""
        import docker.errors

        try:
            response = self.api._get(self.api._url(path), params=params)
            return self.api._result(response, json=True)
        except docker.errors.NotFound as exc:
            raise EngineNotFound(str(exc.explanation or exc)) from None
        except docker.errors.APIError as exc:
            raise EngineError(exc.status_code or 0, str(exc.explanation or exc)) from None


_readers: dict[str, Reader] = {}
_lock = threading.Lock()


def reader_for(host: str, url: str, make_client: Any) -> Reader:
    """The cached reader for a host's engine URL (`make_client()` gives the SDK client)."""
    key = f"{host}|{url}"
    with _lock:
        reader = _readers.get(key)
        if reader is None:
            if url.startswith("unix://"):
                reader = UnixReader(url[len("unix://"):], host)
            else:
                reader = SdkReader(make_client().api)
            _readers[key] = reader
        return reader
