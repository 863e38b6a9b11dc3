"""Every package's ``__all__``: sorted the way ruff's RUF022 sorts it, and every name importable."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import meshclient

CORE = ("meshclient", "meshclient.model", "meshclient.routing", "meshclient.store",
        "meshclient.sources")
ADAPTERS = ("meshclient_httpx", "meshclient_grpc", "meshclient_asgi")


def _public_modules() -> list[str]:
    names = ["meshclient"]
    for info in pkgutil.walk_packages(meshclient.__path__, "meshclient."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # an adapter whose optional extra is not installed
        pytest.skip(f"{name}: {exc}")


def _isort_key(name: str) -> tuple[int, list[object]]:
    """RUF022's isort-style order: SCREAMING_CASE, then CamelCase, then the rest; a natural
    sort inside each group."""
    if name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural: list[object] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return group, natural


def test_public_modules_found() -> None:
    """The walk finds the core packages (guards the parametrization below)."""
    found = set(_public_modules())
    assert set(CORE) <= found


@pytest.mark.parametrize("name", CORE)
def test_core_package_declares_all(name: str) -> None:
    """Core packages say what they export (STYLE.md: explicit public API)."""
    assert isinstance(getattr(_import(name), "__all__", None), list | tuple)


@pytest.mark.parametrize("name", [*_public_modules(), *ADAPTERS])
def test_all_is_sorted_unique_and_importable(name: str) -> None:
    """``__all__`` is sorted (RUF022 isort-style), has no duplicates, and every name in it
    can be imported from the module."""
    module = _import(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} has no __all__ (nothing exported yet)")
    exported = list(exported)
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names {item!r}, which is missing"
        namespace: dict[str, object] = {}
        exec(f"from {name} import {item}", namespace)
        assert namespace[item] is getattr(module, item)
