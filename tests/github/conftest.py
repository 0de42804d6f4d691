"""Fixtures for the GitHub edge: the loopback API server and a recorder for sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_github import FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    try:
        yield server
    finally:
        server.stop()


class Sleeps(list):
    """Records requested sleeps instead of waiting (the client's clock is injectable)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
