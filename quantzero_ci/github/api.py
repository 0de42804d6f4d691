"""A small GitHub REST client on urllib: base URL from ``$GITHUB_API_URL``, pagination through
``Link`` headers, retries with backoff on 5xx and rate limits, typed errors for permission problems.

Every transport failure (refused, reset, timed out, an answer that is not HTTP) is a
`GitHubServerError`, and all calls of one client share a total time budget (``budget_s``), so an
unreachable or hanging API costs at most that long.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

from quantzero_ci import __version__
from quantzero_ci.errors import QuantZeroError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_BUDGET_S = 60.0
API_VERSION = "2022-11-28"
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubApiError(QuantZeroError):
    """A GitHub API call failed after any retries."""

    exit_code = 1

    def __init__(self, message: str, *, status: int | None = None, method: str = "", url: str = ""):
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url


class GitHubPermissionError(GitHubApiError):
    """401/403/404: the token may not do this (a fork's read-only token, missing permissions)."""


class GitHubRateLimitError(GitHubApiError):
    """The rate limit is exhausted for longer than the client is willing to wait."""


class GitHubServerError(GitHubApiError):
    """5xx (or no answer) on a request the client did not retry."""


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, lower-cased headers, decoded JSON body (None when empty)."""

    status: int
    headers: dict[str, str]
    body: Any


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    if not link_header:
        return None
    for part in link_header.split(","):
        match = _LINK_NEXT.search(part)
        if match:
            return match.group(1)
    return None


class GitHubClient:
    """Calls the REST API at ``api_url`` with ``token``; ``sleep``/``clock`` are injectable."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        timeout_s: float = 30.0,
        budget_s: float = DEFAULT_BUDGET_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._origin = urllib.parse.urlsplit(self.api_url)[:2]
        self._token = token
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self.budget_s = budget_s
        self._deadline = monotonic() + budget_s

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r})"

    def url(self, path: str, params: Mapping[str, object] | None = None) -> str:
        """An absolute URL for ``path`` (an API path, or a full URL on the same host)."""
        if path.startswith(("http://", "https://")):
            if urllib.parse.urlsplit(path)[:2] != self._origin:
                raise GitHubApiError(
                    f"Refusing to send the token to {path}: not on {self.api_url}."
                )
            url = path
        else:
            url = self.api_url + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, object] | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request; retry 5xx (idempotent methods only), 429 and rate-limit 403s."""
        url = self.url(path, params)
        data = None if body is None else json.dumps(body).encode("utf-8")
        retry_server_errors = (
            method in ("GET", "PATCH", "PUT", "DELETE") if idempotent is None else idempotent
        )
        attempt = 0
        while True:
            try:
                return self._send(method, url, data, self._remaining(method, url))
            except _Retryable as retry:
                server_side = retry.kind == "server"
                wait = self._wait_for(retry, attempt)
                if attempt >= self.max_retries or (server_side and not retry_server_errors):
                    raise retry.final(method, url) from None
                if wait is None:
                    raise retry.final(method, url, exhausted=True) from None
                if wait >= self._deadline - self._monotonic():
                    raise retry.final(method, url, budget_s=self.budget_s) from None
                attempt += 1
                self._sleep(wait)

    def backoff(self, attempt: int) -> None:
        """Sleep the backoff for retry number ``attempt`` (0-based), within the time budget."""
        left = max(0.0, self._deadline - self._monotonic())
        self._sleep(min(self.backoff_s * (2**attempt), left))

    def _remaining(self, method: str, url: str) -> float:
        """Seconds left of the budget, or GitHubServerError when it is spent."""
        left = self._deadline - self._monotonic()
        if left <= 0:
            raise GitHubServerError(
                f"{method} {url} not sent: the {self.budget_s:g} s time budget for GitHub API "
                "calls is spent (action input api-timeout)",
                method=method,
                url=url,
            )
        return left

    def paginate(self, path: str, *, per_page: int = 100) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: rel="next"`` page by page."""
        url: str | None = self.url(path, {"per_page": per_page})
        while url:
            response = self.request("GET", url)
            if not isinstance(response.body, list):
                raise GitHubApiError(f"GET {url} did not return a list.", method="GET", url=url)
            yield from response.body
            url = next_link(response.headers.get("link"))

    def _send(self, method: str, url: str, data: bytes | None, left: float) -> Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"quantzero-ci/{__version__}",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout_s, left)) as answer:
                return Response(answer.status, _headers(answer.headers), _decode(answer.read()))
        except urllib.error.HTTPError as failure:
            status, headers_ = failure.code, _headers(failure.headers)
            payload = _decode(failure.read())
            message = payload.get("message") if isinstance(payload, dict) else None
            detail = f"{method} {url} → HTTP {status}" + (f": {message}" if message else "")
            if status >= 500:
                raise _Retryable("server", detail, status, headers_) from None
            if status == 429 or (status == 403 and _rate_limited(headers_, message)):
                raise _Retryable("rate", detail, status, headers_) from None
            if status in (401, 403, 404):
                raise GitHubPermissionError(detail, status=status, method=method, url=url) from None
            raise GitHubApiError(detail, status=status, method=method, url=url) from None
        except (
            OSError,
            http.client.HTTPException,
            ValueError,
        ) as failure:  # URLError is an OSError
            reason = getattr(failure, "reason", None) or f"{type(failure).__name__}: {failure}"
            raise _Retryable("server", f"{method} {url} → no answer ({reason})", None, {}) from None

    def _wait_for(self, retry: _Retryable, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when the wait would exceed ``max_wait_s``."""
        headers = retry.headers
        wait = self.backoff_s * (2**attempt)
        if headers.get("retry-after", "").strip().isdigit():
            wait = float(headers["retry-after"])
        elif retry.kind == "rate" and headers.get("x-ratelimit-remaining") == "0":
            reset = headers.get("x-ratelimit-reset", "")
            if reset.isdigit():
                wait = max(0.0, float(reset) - self._clock()) + 1.0
        return wait if wait <= self.max_wait_s else None


class _Retryable(Exception):
    def __init__(self, kind: str, detail: str, status: int | None, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.headers = kind, detail, status, headers

    def final(
        self, method: str, url: str, *, exhausted: bool = False, budget_s: float | None = None
    ) -> GitHubApiError:
        if budget_s is not None:
            return GitHubServerError(
                f"{self.detail} (no retry: the {budget_s:g} s time budget for GitHub API calls "
                "would be spent; action input api-timeout)",
                status=self.status,
                method=method,
                url=url,
            )
        if self.kind == "rate":
            why = "rate limit exhausted" + (" beyond the wait limit" if exhausted else "")
            return GitHubRateLimitError(
                f"{self.detail} ({why})", status=self.status, method=method, url=url
            )
        return GitHubServerError(self.detail, status=self.status, method=method, url=url)


def _rate_limited(headers: Mapping[str, str], message: object) -> bool:
    if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
        return True
    return isinstance(message, str) and "rate limit" in message.lower()


def _headers(raw: Message | Mapping[str, str] | None) -> dict[str, str]:
    if raw is None:
        return {}
    return {key.lower(): value for key, value in raw.items()}


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"message": raw[:200].decode("utf-8", "replace")}
