"""Istio ``security.istio.io`` AuthorizationPolicy: which workloads it applies to, and rules.

Semantics follow Istio's reference (security.istio.io/v1 AuthorizationPolicy):

- a rule matches when any ``from`` matches, any ``to`` matches and every ``when`` holds
  (a missing list matches everything);
- inside one source, operation or condition every present field must match; a positive field
  matches when the value matches one of its patterns, a ``not`` field when it matches none;
  an absent value (no principal on a plaintext call) never matches a positive field and
  always satisfies a negative one (so ``notPrincipals: ["*"]`` denies anonymous callers);
- patterns are exact, ``prefix*``, ``*suffix`` or ``*`` (any non-empty value); hosts compare
  without case; methods are upper-cased before matching;
- a policy without rules matches nothing (an ALLOW policy without rules admits nothing).

Anything else (path templates ``{*}``, unknown ``when`` keys, CUSTOM) is *unsupported*: the
engine makes the policy fail closed.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from meshclient.authz._request import AuthzRequest, CompiledRule, Matcher
from meshclient.model import IstioAuthorizationPolicy, IstioCondition, IstioOperation, IstioSource

__all__ = ["applies_to", "compile_istio_rules", "istio_key"]

Getter = Callable[[AuthzRequest], str | None]
Check = Callable[[str | None], bool]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsupportedPolicy(ValueError):
    """A policy uses something this module does not implement."""


def istio_key(policy: IstioAuthorizationPolicy) -> str:
    return f"AuthorizationPolicy {policy.meta.namespace}/{policy.meta.name}"


def applies_to(
    policy: IstioAuthorizationPolicy, namespace: str, labels: Mapping[str, str],
    root_namespace: str,
) -> bool:
    """Istio: a policy in the root namespace applies mesh-wide, others in their namespace."""
    ns = policy.meta.namespace
    if ns not in (namespace, root_namespace):
        return False
    return policy.selector is None or policy.selector.matches(labels)


# -- string patterns ---------------------------------------------------------------------


def string_check(patterns: Iterable[str], *, fold_case: bool = False) -> Check:
    """One of Istio's string patterns matches (exact, ``p*``, ``*s``, ``*``)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    anything = False
    for raw in patterns:
        p = raw.lower() if fold_case else raw
        if p == "*":
            anything = True
        elif p.endswith("*") and "*" not in p[:-1]:
            prefixes.append(p[:-1])
        elif p.startswith("*") and "*" not in p[1:]:
            suffixes.append(p[1:])
        elif "*" in p or "{" in p:
            raise UnsupportedPolicy(f"pattern {raw!r} (only exact, prefix*, *suffix, *)")
        else:
            exact.add(p)
    exact_f = frozenset(exact)
    pre, suf = tuple(prefixes), tuple(suffixes)
    if fold_case:
        inner = _specialised(exact_f, pre, suf, anything)
        return lambda value: value is not None and inner(value.lower())
    return _specialised(exact_f, pre, suf, anything)


def _specialised(exact: frozenset[str], pre: tuple[str, ...], suf: tuple[str, ...],
                 anything: bool) -> Check:
    # The hot path: one C call where possible (a value may be None: the attribute is absent).
    if anything:
        return bool  # any non-empty value
    if not pre and not suf:
        return exact.__contains__
    if not exact and not suf:
        return lambda value: value is not None and value.startswith(pre)
    if not exact and not pre:
        return lambda value: value is not None and value.endswith(suf)

    def check(value: str | None) -> bool:
        if value is None:
            return False
        return value in exact or value.startswith(pre) or value.endswith(suf)

    return check


def ip_check(blocks: Iterable[str]) -> Check:
    nets: list[_Network] = []
    for b in blocks:
        try:
            nets.append(ipaddress.ip_network(b, strict=False))
        except ValueError:
            raise UnsupportedPolicy(f"ipBlock {b!r} is not an address or CIDR") from None
    frozen = tuple(nets)

    def check(value: str | None) -> bool:
        if value is None:
            return False
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return False
        return any(addr in n for n in frozen)

    return check


def _field(get: Getter, pos: Check | None, neg: Check | None) -> Matcher:
    if pos is not None and neg is not None:
        def both(req: AuthzRequest) -> bool:
            value = get(req)
            return pos(value) and not neg(value)

        return both
    if pos is not None:
        return lambda req: pos(get(req))
    if neg is None:
        raise ValueError("a field needs a positive or a negative check")
    return lambda req: not neg(get(req))


def _true(req: AuthzRequest) -> bool:
    return True


def _all(matchers: list[Matcher]) -> Matcher:
    # Unrolled for the common sizes: a generator per request costs more than the checks.
    if not matchers:
        return _true
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        a, b = matchers
        return lambda req: a(req) and b(req)
    if len(matchers) == 3:
        a, b, c = matchers
        return lambda req: a(req) and b(req) and c(req)
    ms = tuple(matchers)

    def every(req: AuthzRequest) -> bool:
        for m in ms:  # noqa: SIM110 - a generator per request costs more than the checks
            if not m(req):
                return False
        return True

    return every


def _any(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        a, b = matchers
        return lambda req: a(req) or b(req)
    ms = tuple(matchers)

    def some(req: AuthzRequest) -> bool:
        for m in ms:  # noqa: SIM110 - a generator per request costs more than the checks
            if m(req):
                return True
        return False

    return some


# -- attribute getters -------------------------------------------------------------------


def _principal(req: AuthzRequest) -> str | None:
    peer = req.caller.peer
    return peer.principal if peer is not None else None


def _namespace(req: AuthzRequest) -> str | None:
    peer = req.caller.peer
    return peer.namespace if peer is not None else None


def _request_principal(req: AuthzRequest) -> str | None:
    user = req.caller.user
    return user.principal if user is not None else None


def _presenter(req: AuthzRequest) -> str | None:
    user = req.caller.user
    return user.presenter if user is not None else None


_PATH: Final[Getter] = operator.attrgetter("path")
_METHOD: Final[Getter] = operator.attrgetter("method")
_HOST: Final[Getter] = operator.attrgetter("host")


def _port(req: AuthzRequest) -> str | None:
    return str(req.port) if req.port is not None else None


_SIMPLE_KEYS: Final[dict[str, tuple[Getter, bool]]] = {
    # key -> (getter, is an IP attribute)
    "source.ip": (lambda r: r.caller.source_ip, True),
    "remote.ip": (lambda r: r.caller.remote_ip, True),
    "destination.ip": (lambda r: r.destination_ip, True),
    "source.namespace": (_namespace, False),
    "source.principal": (_principal, False),
    "request.auth.principal": (_request_principal, False),
    "request.auth.presenter": (_presenter, False),
    "destination.port": (_port, False),
    "connection.sni": (lambda r: r.sni, False),
}


def _header_getter(name: str) -> Getter:
    lowered = name.lower()
    return lambda r: r.headers.get(lowered)


def _claim_values(path: tuple[str, ...]) -> Callable[[AuthzRequest], list[str] | None]:
    def get(req: AuthzRequest) -> list[str] | None:
        user = req.caller.user
        if user is None:
            return None
        value: object = user.claims
        for step in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        if isinstance(value, str):
            return [value]
        if isinstance(value, bool):
            return ["true" if value else "false"]
        if isinstance(value, int | float):
            return [str(value)]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return None

    return get


def _multi(get: Callable[[AuthzRequest], list[str] | None], pos: Check | None,
           neg: Check | None) -> Matcher:
    def match(req: AuthzRequest) -> bool:
        values = get(req)
        if not values:
            return pos is None
        if pos is not None and not any(pos(v) for v in values):
            return False
        return not (neg is not None and any(neg(v) for v in values))

    return match


def _condition(cond: IstioCondition) -> Matcher:
    key = cond.key
    if cond.values is None and cond.not_values is None:
        raise UnsupportedPolicy(f"when {key!r} has neither values nor notValues")
    simple = _SIMPLE_KEYS.get(key)
    if simple is not None:
        get, is_ip = simple
        make = ip_check if is_ip else string_check
        return _field(get, None if cond.values is None else make(cond.values),
                      None if cond.not_values is None else make(cond.not_values))
    pos = None if cond.values is None else string_check(cond.values)
    neg = None if cond.not_values is None else string_check(cond.not_values)
    if key.startswith("request.headers[") and key.endswith("]"):
        return _field(_header_getter(key[len("request.headers["):-1]), pos, neg)
    if key == "request.auth.audiences":
        return _multi(lambda r: list(r.caller.user.audiences) if r.caller.user else None,
                      pos, neg)
    if key.startswith("request.auth.claims[") and key.endswith("]"):
        inner = key[len("request.auth.claims["):-1]
        path = tuple(inner.split("]["))
        if not all(path):
            raise UnsupportedPolicy(f"when key {key!r}")
        return _multi(_claim_values(path), pos, neg)
    raise UnsupportedPolicy(f"when key {key!r} is not implemented")


def _source(src: IstioSource) -> tuple[Matcher, frozenset[tuple[str, str]] | None]:
    parts: list[Matcher] = []
    pairs: list[tuple[Getter, tuple[str, ...] | None, tuple[str, ...] | None, bool]] = [
        (_principal, src.principals, src.not_principals, False),
        (_request_principal, src.request_principals, src.not_request_principals, False),
        (_namespace, src.namespaces, src.not_namespaces, False),
        (lambda r: r.caller.source_ip, src.ip_blocks, src.not_ip_blocks, True),
        (lambda r: r.caller.remote_ip, src.remote_ip_blocks, src.not_remote_ip_blocks, True),
    ]
    for get, pos, neg, is_ip in pairs:
        if pos is None and neg is None:
            continue
        make = ip_check if is_ip else string_check
        parts.append(_field(get, None if pos is None else make(pos),
                            None if neg is None else make(neg)))
    keys: frozenset[tuple[str, str]] | None = None
    if src.principals is not None and not any("*" in p for p in src.principals):
        keys = frozenset(("p", p) for p in src.principals)
    elif src.namespaces is not None and not any("*" in n for n in src.namespaces):
        keys = frozenset(("n", n) for n in src.namespaces)
    return _all(parts), keys


def _operation(op: IstioOperation) -> Matcher:
    parts: list[Matcher] = []
    if op.hosts is not None or op.not_hosts is not None:
        parts.append(_field(
            _HOST,
            None if op.hosts is None else string_check(_hosts(op.hosts), fold_case=True),
            None if op.not_hosts is None else string_check(_hosts(op.not_hosts), fold_case=True),
        ))
    if op.ports is not None or op.not_ports is not None:
        parts.append(_field(_port, None if op.ports is None else string_check(op.ports),
                            None if op.not_ports is None else string_check(op.not_ports)))
    if op.methods is not None or op.not_methods is not None:
        parts.append(_field(
            _METHOD,
            None if op.methods is None else string_check(m.upper() for m in op.methods),
            None if op.not_methods is None else string_check(m.upper() for m in op.not_methods),
        ))
    if op.paths is not None or op.not_paths is not None:
        parts.append(_field(_PATH,
                            None if op.paths is None else string_check(op.paths),
                            None if op.not_paths is None else string_check(op.not_paths)))
    return _all(parts)


def _hosts(hosts: Iterable[str]) -> list[str]:
    # Istio compares the Host header; we match it without its port, so drop ports here too.
    out = []
    for h in hosts:
        if h.startswith("[") or h.count(":") != 1:
            out.append(h)
        else:
            out.append(h.rsplit(":", 1)[0])
    return out


def _path_keys(ops: Iterable[IstioOperation]) -> tuple[frozenset[str], frozenset[str]] | None:
    """The exact paths and prefixes a rule is limited to, if every operation limits paths."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for op in ops:
        if not op.paths:
            return None
        for p in op.paths:
            if "*" not in p:
                exact.add(p)
            elif p.endswith("*") and "*" not in p[:-1] and len(p) > 1:
                prefixes.add(p[:-1])
            else:
                return None
    return frozenset(exact), frozenset(prefixes)


def _header_key(conds: Iterable[IstioCondition]) -> tuple[str, frozenset[str]] | None:
    """A header condition with exact values only: the rule needs one of those values."""
    for c in conds:
        if (c.key.startswith("request.headers[") and c.key.endswith("]") and c.values
                and not any("*" in v for v in c.values)):
            return c.key[len("request.headers["):-1].lower(), frozenset(c.values)
    return None


def compile_istio_rules(policy: IstioAuthorizationPolicy) -> tuple[CompiledRule, ...]:
    """The policy's rules as predicates.

    Raises:
        UnsupportedPolicy: the policy uses something not implemented (it must fail closed).
    """
    if policy.unsupported:
        raise UnsupportedPolicy("; ".join(policy.unsupported))
    key = istio_key(policy)
    out: list[CompiledRule] = []
    for index, rule in enumerate(policy.rules):
        parts: list[Matcher] = []
        keys: frozenset[tuple[str, str]] | None = None
        if rule.from_:
            compiled = [_source(s) for s in rule.from_]
            parts.append(_any([m for m, _ in compiled]))
            if all(k is not None for _, k in compiled):
                keys = frozenset().union(*(k for _, k in compiled if k is not None))
        path_keys = _path_keys(rule.to) if rule.to else None
        header_key = _header_key(rule.when)
        # Cheap, selective checks first: conditions and operations before sources.
        parts.extend(_condition(c) for c in rule.when)
        if rule.to:
            parts.insert(0, _any([_operation(o) for o in rule.to]))
        out.append(CompiledRule(policy=key, index=index, match=_all(parts), principals=keys,
                                paths=path_keys, header=header_key))
    return tuple(out)
