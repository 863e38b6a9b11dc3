"""``meshclient.sources`` exports: ``__all__`` is complete and kept in ruff's (isort) order."""

from __future__ import annotations

import types

import meshclient.sources


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_sources_all_lists_every_public_name_sorted() -> None:
    """Every public name is in ``__all__``, once, in SCREAMING, Camel, lower order."""
    public = {
        name for name, value in vars(meshclient.sources).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    exported = meshclient.sources.__all__
    assert set(exported) == public
    assert len(exported) == len(set(exported))
    assert exported == sorted(exported, key=_isort_key)


def test_sources_exports_resolve_to_objects() -> None:
    """Each exported name resolves (no stale entries)."""
    for name in meshclient.sources.__all__:
        assert getattr(meshclient.sources, name) is not None
