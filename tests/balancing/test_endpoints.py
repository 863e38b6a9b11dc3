"""Endpoint sets from Services and EndpointSlices (kube-proxy's reading of slices)."""

from __future__ import annotations

from meshclient.balancing import EndpointSet, SetKey, build_endpoint_sets
from meshclient.model import EndpointPort, ServicePort

from ._world import endpoint, endpoint_slice, service


def _addresses(sets: dict[SetKey, EndpointSet], key: SetKey = ("default", "svc", 80)) -> list[str]:
    return [e.address for e in sets[key].endpoints]


def test_endpoints_ready_present_terminating_left_out() -> None:
    """Ready endpoints serve; serving-but-terminating ones wait while any is ready (KEP-1669)."""
    s = endpoint_slice("a", [
        endpoint("10.0.0.1"),
        endpoint("10.0.0.2", ready=False, serving=True, terminating=True),
        endpoint("10.0.0.3", ready=False, serving=False, terminating=False),
    ])
    sets = build_endpoint_sets([service()], [s])
    assert _addresses(sets) == ["10.0.0.1"]
    assert not sets["default", "svc", 80].terminating_fallback
    assert sets["default", "svc", 80].left_out == 2


def test_endpoints_none_ready_fall_back_to_serving_terminating() -> None:
    """With nothing ready, serving-and-terminating endpoints take traffic, not-serving never."""
    s = endpoint_slice("a", [
        endpoint("10.0.0.2", ready=False, serving=True, terminating=True),
        endpoint("10.0.0.3", ready=False, serving=False, terminating=True),
        endpoint("10.0.0.4", ready=False, serving=True, terminating=False),
    ])
    sets = build_endpoint_sets([service()], [s])
    assert _addresses(sets) == ["10.0.0.2"]
    assert sets["default", "svc", 80].terminating_fallback


def test_endpoints_nothing_usable_empty_set_kept() -> None:
    """A Service port whose endpoints are all unusable still has a (empty) set, so 503 not 500."""
    s = endpoint_slice("a", [endpoint("10.0.0.3", ready=False, serving=False)])
    sets = build_endpoint_sets([service()], [s])
    assert sets["default", "svc", 80].endpoints == ()
    assert not sets["default", "svc", 80].terminating_fallback


def test_endpoints_named_target_port_number_from_each_slice() -> None:
    """Slices match the Service port by name and carry the target number each Pod resolved."""
    svc = service(ports=[ServicePort(name="http", port=80, target_port="web"),
                         ServicePort(name="metrics", port=9090, target_port=9091)])
    a = endpoint_slice("a", [endpoint("10.0.0.1")],
                       ports=[EndpointPort(name="http", port=8080),
                              EndpointPort(name="metrics", port=9091)])
    b = endpoint_slice("b", [endpoint("10.0.0.2")], ports=[EndpointPort(name="http", port=8081)])
    sets = build_endpoint_sets([svc], [a, b])
    http = sets["default", "svc", 80].endpoints
    assert [(e.address, e.port) for e in http] == [("10.0.0.1", 8080), ("10.0.0.2", 8081)]
    assert [(e.address, e.port) for e in sets["default", "svc", 9090].endpoints] == [
        ("10.0.0.1", 9091)
    ]


def test_endpoints_port_name_mismatch_excluded() -> None:
    """A slice whose ports do not name the Service port contributes nothing to it."""
    s = endpoint_slice("a", [endpoint("10.0.0.1")], ports=[EndpointPort(name="grpc", port=9000)])
    assert build_endpoint_sets([service()], [s])["default", "svc", 80].endpoints == ()


def test_endpoints_app_protocol_slice_then_service() -> None:
    """appProtocol comes from the slice port, else from the Service port."""
    svc = service(ports=[ServicePort(name="http", port=80, app_protocol="kubernetes.io/h2c")])
    ws = EndpointPort(name="http", port=8080, app_protocol="kubernetes.io/ws")
    a = endpoint_slice("a", [endpoint("10.0.0.1")], ports=[ws])
    b = endpoint_slice("b", [endpoint("10.0.0.2")], ports=[EndpointPort(name="http", port=8080)])
    got = build_endpoint_sets([svc], [a, b])["default", "svc", 80]
    assert [e.app_protocol for e in got.endpoints] == ["kubernetes.io/ws", "kubernetes.io/h2c"]
    assert got.app_protocol == "kubernetes.io/h2c"


def test_endpoints_duplicate_across_slices_counted_once() -> None:
    """An address listed by two slices (mid-rebalance) is one endpoint."""
    a = endpoint_slice("a", [endpoint("10.0.0.1"), endpoint("10.0.0.2")])
    b = endpoint_slice("b", [endpoint("10.0.0.2"), endpoint("10.0.0.3")])
    assert _addresses(build_endpoint_sets([service()], [a, b])) == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3"
    ]


def test_endpoints_duplicate_best_condition_wins_regardless_of_order() -> None:
    """A duplicate that is ready in one slice and not in another counts as ready."""
    good = endpoint("10.0.0.1")
    bad = endpoint("10.0.0.1", ready=False, serving=False)
    for first, second in ((good, bad), (bad, good)):
        a = endpoint_slice("a", [first])
        b = endpoint_slice("b", [second])
        got = build_endpoint_sets([service()], [b, a])["default", "svc", 80]
        assert [e.address for e in got.endpoints] == ["10.0.0.1"]
        assert got.endpoints[0].ready


def test_endpoints_dual_stack_pod_joined_by_target_ref() -> None:
    """One Pod in an IPv4 and an IPv6 slice is one endpoint with both addresses, IPv4 first."""
    v4 = endpoint_slice("v4", [endpoint("10.0.0.1", target="Pod default/p1")])
    v6 = endpoint_slice("v6", [endpoint("fd00::1", target="Pod default/p1"),
                               endpoint("fd00::2", target="Pod default/p2")],
                        address_type="IPv6")
    got = build_endpoint_sets([service()], [v6, v4])["default", "svc", 80].endpoints
    assert [(e.address, e.addresses) for e in got] == [
        ("10.0.0.1", ("10.0.0.1", "fd00::1")),
        ("fd00::2", ("fd00::2",)),
    ]


def test_endpoints_ip_families_order_prefers_ipv6_when_asked() -> None:
    """ip_families decides which family a dual-stack Pod is reached on, and drops the others."""
    v4 = endpoint_slice("v4", [endpoint("10.0.0.1", target="Pod default/p1")])
    v6 = endpoint_slice("v6", [endpoint("fd00::1", target="Pod default/p1")], address_type="IPv6")
    both = build_endpoint_sets([service()], [v4, v6], ip_families=("IPv6", "IPv4"))
    assert _addresses(both) == ["fd00::1"]
    only4 = build_endpoint_sets([service()], [v4, v6], ip_families=("IPv4",))
    assert [e.addresses for e in only4["default", "svc", 80].endpoints] == [("10.0.0.1",)]


def test_endpoints_fqdn_slices_ignored() -> None:
    """FQDN slices are skipped, as kube-proxy skips them."""
    s = endpoint_slice("f", [endpoint("db.example.com")], address_type="FQDN")
    assert build_endpoint_sets([service()], [s])["default", "svc", 80].endpoints == ()


def test_endpoints_slice_membership_by_label_and_namespace() -> None:
    """Slices join a Service by service-name label and namespace, not by their own name."""
    mine = endpoint_slice("anything", [endpoint("10.0.0.1")])
    other_svc = endpoint_slice("svc-x", [endpoint("10.0.0.2")], service="other")
    other_ns = endpoint_slice("svc-y", [endpoint("10.0.0.3")], namespace="prod")
    unlabelled = endpoint_slice("svc-z", [endpoint("10.0.0.4")], service="")
    sets = build_endpoint_sets([service()], [mine, other_svc, other_ns, unlabelled])
    assert _addresses(sets) == ["10.0.0.1"]


def test_endpoints_slices_come_and_go_set_follows() -> None:
    """The set is a function of the current slices: a removed slice's endpoints are gone."""
    a = endpoint_slice("a", [endpoint("10.0.0.1")])
    b = endpoint_slice("b", [endpoint("10.0.0.2")])
    assert _addresses(build_endpoint_sets([service()], [a, b])) == ["10.0.0.1", "10.0.0.2"]
    assert _addresses(build_endpoint_sets([service()], [b])) == ["10.0.0.2"]


def test_endpoints_external_name_service_has_no_set() -> None:
    """ExternalName Services have no endpoints and get no set at all."""
    assert build_endpoint_sets([service(type="ExternalName")], []) == {}


def test_endpoints_weights_by_address_default_one() -> None:
    """Per-endpoint weights come from the weights mapping; absent addresses weigh 1."""
    s = endpoint_slice("a", [endpoint("10.0.0.1"), endpoint("10.0.0.2")])
    got = build_endpoint_sets([service()], [s], weights={"10.0.0.2": 5})["default", "svc", 80]
    assert [e.weight for e in got.endpoints] == [1, 5]
