"""``examples/rbac.yaml`` grants exactly get/list/watch on exactly the kinds meshclient watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshclient.sources import DEFAULT_KINDS

RBAC = Path(__file__).resolve().parents[3] / "examples" / "rbac.yaml"


def _grants(doc: dict[str, Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for rule in doc["rules"]:
        assert sorted(rule["verbs"]) == ["get", "list", "watch"], rule
        out |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    return out


def _docs() -> dict[tuple[str, str], dict[str, Any]]:
    with RBAC.open() as f:
        return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(f) if d}


def test_rbac_cluster_role_grants_exactly_watched_kinds() -> None:
    """The cluster-wide ClusterRole covers every watched kind and nothing more."""
    watched = {(k.group, k.plural) for k in DEFAULT_KINDS}
    assert _grants(_docs()[("ClusterRole", "meshclient-reader")]) == watched


def test_rbac_namespaced_layout_splits_by_scope() -> None:
    """The Role holds the namespaced kinds, the small ClusterRole the cluster-scoped ones."""
    docs = _docs()
    namespaced = {(k.group, k.plural) for k in DEFAULT_KINDS if k.namespaced}
    cluster = {(k.group, k.plural) for k in DEFAULT_KINDS if not k.namespaced}
    assert _grants(docs[("Role", "meshclient-reader")]) == namespaced
    assert _grants(docs[("ClusterRole", "meshclient-cluster-reader")]) == cluster
