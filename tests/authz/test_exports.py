"""Public names: each package's ``__all__`` is sorted, complete and importable (STYLE §9)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def _public(module: ModuleType) -> set[str]:
    return {n for n, v in vars(module).items()
            if not n.startswith("_") and not isinstance(v, ModuleType)
            and getattr(v, "__module__", module.__name__).startswith(module.__name__)}


@pytest.mark.parametrize("name", ["meshclient.authz", "meshclient_asgi"])
def test_all_sorted_and_complete(name: str) -> None:
    """``__all__`` lists every public name the package re-exports, in ruff's order."""
    module = importlib.import_module(name)
    names = list(module.__all__)
    consts = [n for n in names if n.isupper()]
    assert names == sorted(consts) + sorted(n for n in names if not n.isupper() and n[0].isupper()
                                            ) + sorted(n for n in names if n[0].islower())
    for n in names:
        assert hasattr(module, n), n
    assert _public(module) - set(names) == set()


def test_grpc_exports_server_names() -> None:
    """meshclient_grpc exports the server interceptors and current_caller."""
    module = importlib.import_module("meshclient_grpc")
    assert {"AuthzInterceptor", "AioAuthzInterceptor", "current_caller"} <= set(module.__all__)
