"""A real HTTP server on 127.0.0.1 implementing the few GitHub REST endpoints the action uses.

The token's identity (``/user``), issue comments with their authors (list with ``per_page``/``page`` and ``Link`` headers, create, edit) and a pull
request's head. Faults can be queued (``fail``) and writes can be forbidden (a fork's token).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LIST_OR_CREATE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
EDIT = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/comments/(\d+)$")
USER = "/user"
BOT = "github-actions[bot]"
PULL = re.compile(r"^/repos/([^/]+)/([^/]+)/pulls/(\d+)$")


@dataclass
class Fault:
    """Answer the next matching request with ``status`` (after applying it, if ``apply``)."""

    method: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "fault injected by the test"
    apply: bool = False


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


class FakeGitHub:
    """State and behaviour of the fake API; ``url`` is what ``GITHUB_API_URL`` should be."""

    def __init__(self, token: str = "test-token", prefix: str = "/api/v3", max_per_page: int = 100):
        self.token = token
        self.prefix = prefix
        self.max_per_page = max_per_page
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.heads: dict[tuple[str, int], str] = {}
        self.faults: list[Fault] = []
        self.forbid_writes = False
        # the token's identity: a login answers GET /user; None is an installation token
        # (GITHUB_TOKEN), which may not read /user (403) and writes as github-actions[bot]
        self.login: str | None = None
        self.requests: list[Seen] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def identity(self) -> str:
        """The author of the comments this token writes."""
        return self.login or BOT

    def add_comment(self, repo: str, pr: int, body: str, user: str = "someone") -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            item = {
                "id": self._next_id,
                "body": body,
                "user": {"login": user},
                "html_url": f"https://github.example/{repo}/pull/{pr}#issuecomment-{self._next_id}",
            }
            self.comments.setdefault((repo, pr), []).append(item)
            return item

    def fail(self, method: str, status: int, *, count: int = 1, **kwargs: Any) -> None:
        self.faults.extend(Fault(method, status, **kwargs) for _ in range(count))

    def seen(self, method: str) -> list[Seen]:
        return [request for request in self.requests if request.method == method]

    # -- request handling -------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_PATCH(self) -> None:
                fake._dispatch(self, "PATCH")

        return Handler

    def _dispatch(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = parts.path
        query = urllib.parse.parse_qs(parts.query)
        with self._lock:
            self.requests.append(Seen(method, path, query, http.headers.get("Authorization"), body))
            fault = next((f for f in self.faults if f.method == method), None)
            if fault is not None:
                self.faults.remove(fault)
        if not path.startswith(self.prefix + "/"):
            return self._send(http, 404, {"message": "Not Found"})
        path = path[len(self.prefix) :]
        if http.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(http, 401, {"message": "Bad credentials"})
        if fault is not None and not fault.apply:
            return self._send(http, fault.status, {"message": fault.message}, fault.headers)
        if method in ("POST", "PATCH") and self.forbid_writes:
            return self._send(http, 403, {"message": "Resource not accessible by integration"})
        status, payload, headers = self._route(method, path, query, body, http)
        if fault is not None:  # applied, then the answer is lost
            return self._send(http, fault.status, {"message": fault.message}, fault.headers)
        return self._send(http, status, payload, headers)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, http: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if path == USER and method == "GET":
            if self.login is None:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": self.login}, {}
        if match := LIST_OR_CREATE.match(path):
            repo, pr = f"{match[1]}/{match[2]}", int(match[3])
            if method == "GET":
                return self._list(repo, pr, query, http)
            if method == "POST":
                return 201, self.add_comment(repo, pr, body["body"], user=self.identity), {}
        if (match := EDIT.match(path)) and method == "PATCH":
            repo, comment_id = f"{match[1]}/{match[2]}", int(match[3])
            with self._lock:
                for (owner_repo, _), items in self.comments.items():
                    for item in items:
                        if owner_repo == repo and item["id"] == comment_id:
                            item["body"] = body["body"]
                            return 200, item, {}
            return 404, {"message": "Not Found"}, {}
        if (match := PULL.match(path)) and method == "GET":
            key = (f"{match[1]}/{match[2]}", int(match[3]))
            if key in self.heads:
                return 200, {"number": key[1], "head": {"sha": self.heads[key]}}, {}
        return 404, {"message": "Not Found"}, {}

    def _list(
        self, repo: str, pr: int, query: dict[str, list[str]], http: Any
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.max_per_page)
        page = int(query.get("page", ["1"])[0])
        with self._lock:
            items = list(self.comments.get((repo, pr), []))
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        base = f"{self.url}/repos/{repo}/issues/{pr}/comments"
        links = []
        if page < last:
            links.append(f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{base}?per_page={per_page}&page={last}>; rel="last"')
        return 200, chunk, {"Link": ", ".join(links)} if links else {}

    @staticmethod
    def _send(
        http: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        http.send_response(status)
        http.send_header("Content-Type", "application/json; charset=utf-8")
        http.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            http.send_header(key, value)
        http.end_headers()
        http.wfile.write(data)
