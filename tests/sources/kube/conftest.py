"""Fixtures for the Kubernetes source: the fake API server, client settings, and waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client

from meshclient import Mesh
from meshclient.sources import Backoff, KubeOptions
from tests.sources.kube.apiserver import FakeApiServer

T = TypeVar("T")

FAST = KubeOptions(
    watch_timeout=5, read_timeout=1.0, connect_timeout=1.0, list_timeout=5.0,
    debounce=0.01, max_delay=0.05, initial_hold=5.0, recheck_absent=0.3,
    backoff=Backoff(base=0.02, cap=0.2),
)
"""Options with test-sized timeouts: every wait in these tests is bounded by them."""


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    """A fake API server on loopback, serving every kind meshclient watches."""
    with FakeApiServer() as server:
        yield server


def configuration(server: FakeApiServer) -> client.Configuration:
    """A kubernetes-asyncio configuration for the fake server, with a bearer token."""
    cfg = client.Configuration(host=server.url)
    cfg.api_key = {"BearerToken": "t"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return cfg


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run one test coroutine on a fresh loop, bounded by ``timeout``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], bool], timeout: float = 5.0,
                what: str = "the condition") -> None:
    """Wait (polling every few milliseconds) until ``predicate()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def until_blocking(predicate: Callable[[], bool], timeout: float = 5.0,
                   what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


async def connect(server: FakeApiServer, options: KubeOptions = FAST, **kwargs: Any) -> Mesh:
    """``Mesh.connect_kubernetes`` against the fake server."""
    return await Mesh.connect_kubernetes(configuration=configuration(server), options=options,
                                         **kwargs)


def names(mesh: Mesh, kind: str) -> set[tuple[str, str]]:
    return set(mesh.snapshot.of(kind))


