"""Session persistence (GEP-1619): tokens, pinning, re-pinning and cookie helpers."""

from __future__ import annotations

import random

import pytest

from meshclient.balancing import (
    Balancer,
    BalancerConfig,
    EndpointLimits,
    OutlierConfig,
    Overflow,
    SessionConfig,
    parse_token,
    session_token,
    set_cookie_value,
    token_from_cookies,
)
from meshclient.model import SessionPersistence

from ._world import (
    CONNECT,
    SVC,
    Backend,
    balancer,
    must_pick,
    send,
    simple_world,
)

RULE = "HTTPRoute default/r rule 0"
COOKIE = SessionConfig.from_persistence(RULE, SessionPersistence())


def _start(b: Balancer, config: SessionConfig = COOKIE, now: float = 0.0) -> tuple[str, str]:
    p = send(b, now, session=config)
    assert p.session_token is not None
    return p.address, p.session_token


# -- config and cookies ----------------------------------------------------------------------


def test_session_config_generated_name_per_rule_and_stable() -> None:
    """An unnamed cookie gets a name derived from the rule: unique per rule, same everywhere."""
    a = SessionConfig.from_persistence("rule a", SessionPersistence())
    again = SessionConfig.from_persistence("rule a", SessionPersistence())
    b = SessionConfig.from_persistence("rule b", SessionPersistence())
    assert a.name == again.name != b.name
    assert a.name.startswith("mc-session-")
    named = SessionConfig.from_persistence("rule a", SessionPersistence(name="sid"))
    assert named.name == "sid" and named.path == "/"


def test_session_config_unknown_type_raises_naming_field() -> None:
    """A hand-built persistence with an unknown type is refused, naming the field."""
    with pytest.raises(ValueError, match=r"persistence\.type"):
        SessionConfig.from_persistence(RULE, SessionPersistence(type="Magic"))


def test_set_cookie_session_lifetime_has_no_expiry() -> None:
    """Session cookies carry neither Expires nor Max-Age; Path defaults to / (GEP-1619)."""
    value = set_cookie_value(COOKIE, "abc", secure=True)
    assert value == f"{COOKIE.name}=abc; Path=/; HttpOnly; Secure; SameSite=Strict"


def test_set_cookie_permanent_max_age_from_absolute_timeout() -> None:
    """Permanent cookies get Max-Age from absoluteTimeout."""
    cfg = SessionConfig.from_persistence(RULE, SessionPersistence(
        name="sid", path="/app", lifetime="Permanent", absolute_timeout=3600.0))
    assert set_cookie_value(cfg, "t", secure=False, same_site="Lax") == (
        "sid=t; Path=/app; Max-Age=3600; HttpOnly; SameSite=Lax"
    )


def test_set_cookie_invalid_combinations_raise() -> None:
    """Header sessions have no cookie, and SameSite=None needs Secure."""
    header = SessionConfig.from_persistence(RULE, SessionPersistence(type="Header", name="x-s"))
    with pytest.raises(ValueError, match="header"):
        set_cookie_value(header, "t", secure=True)
    with pytest.raises(ValueError, match="secure"):
        set_cookie_value(COOKIE, "t", secure=False, same_site="None")


def test_token_from_cookies_copes_with_many_cookies() -> None:
    """The named cookie is found among several, across several Cookie headers."""
    headers = ["a=1; b=2", f'c=3; {COOKIE.name}="tok"; d=4', f"{COOKIE.name}=later"]
    assert token_from_cookies(COOKIE.name, headers) == "tok"
    assert token_from_cookies("missing", headers) is None
    assert token_from_cookies("a", ["a"]) is None


def test_token_format_digest_and_optional_time() -> None:
    """Tokens are 16 hex digits, plus the issue time when absoluteTimeout is set."""
    plain = session_token(COOKIE, "10.0.0.1", 100.0)
    assert parse_token(plain) == (plain, None)
    timed_cfg = SessionConfig.from_persistence(RULE, SessionPersistence(absolute_timeout=60.0))
    timed = session_token(timed_cfg, "10.0.0.1", 255.0)
    assert timed == f"{plain}.ff" and parse_token(timed) == (plain, 255.0)
    assert parse_token("user-42") is None


# -- pinning ---------------------------------------------------------------------------------


def test_session_first_request_gets_token_later_ones_stick() -> None:
    """The first pick hands out a token; picks carrying it go to the same endpoint."""
    b = balancer(5)
    address, token = _start(b)
    for _ in range(20):
        p = send(b, 1.0, session=COOKIE, session_token=token)
        assert p.address == address and p.session_token is None
    stats = b.statistics()
    assert (stats.sessions_started, stats.sessions_kept) == (1, 20)


def test_session_beats_weight_zero() -> None:
    """A live session keeps its backend even when the route gives that backend weight 0."""
    services, slices = [], []
    for name in ("a", "b"):
        s, sl = simple_world(2, name=name)
        services += s
        slices += sl
    b = Balancer(rand=random.Random(4).random)
    b.update(services, slices)
    token = session_token(COOKIE, "10.0.0.2", 0.0)  # an endpoint of both; b is listed first
    backends = [Backend("default", "b", 80, 0), Backend("default", "a", 80, 1)]
    p = send(b, 0.0, backends=backends, session=COOKIE, session_token=token)
    assert (p.backend.name, p.address, p.session_token) == ("b", "10.0.0.2", None)
    fresh = send(b, 0.0, backends=backends, session=COOKIE)
    assert fresh.backend.name == "a"  # without a session, weight 0 is never chosen


def test_session_per_rule_token_of_other_rule_repins() -> None:
    """Each rule has its own session: another rule's token starts a new one."""
    b = balancer(5)
    _, token = _start(b)
    other = SessionConfig.from_persistence("HTTPRoute default/r rule 1", SessionPersistence())
    p = send(b, 0.0, session=other, session_token=token)
    assert p.session_token is not None and p.session_token != token


def test_session_endpoint_gone_repins_with_new_token() -> None:
    """When the pinned endpoint leaves the set, the next pick re-pins and issues a new token."""
    b = balancer(3)
    address, token = _start(b)
    services, slices = simple_world(3)
    keep = tuple(e for e in slices[0].endpoints if e.addresses[0] != address)
    b.update(services, [type(slices[0])(meta=slices[0].meta, service_name="svc",
                                        endpoints=keep, ports=slices[0].ports)])
    p = send(b, 1.0, session=COOKIE, session_token=token)
    assert p.address != address and p.session_token not in (None, token)
    assert send(b, 2.0, session=COOKIE, session_token=p.session_token).address == p.address


def test_session_endpoint_ejected_repins_but_panic_keeps_it() -> None:
    """An ejected pinned endpoint is re-pinned, unless the set is in panic."""
    b = balancer(3)
    address, token = _start(b)
    for _ in range(3):
        send(b, 0.0, {address: CONNECT}, session=COOKIE, session_token=token)
    p = send(b, 0.0, session=COOKIE, session_token=token)
    assert p.address != address and p.session_token is not None

    lonely = balancer(1, config=BalancerConfig(outlier=OutlierConfig()))
    address, token = _start(lonely)
    for _ in range(3):
        send(lonely, 0.0, {address: CONNECT}, session=COOKIE, session_token=token)
    assert lonely.set_statistics("default", "svc", 80).panic  # type: ignore[union-attr]
    p = send(lonely, 0.0, session=COOKIE, session_token=token)
    assert (p.address, p.session_token) == (address, None)


def test_session_retry_excluding_pinned_endpoint_repins() -> None:
    """A retry that excludes the pinned endpoint goes elsewhere and moves the session."""
    b = balancer(3)
    address, token = _start(b)
    p = send(b, 0.0, session=COOKIE, session_token=token, exclude={address})
    assert p.address != address and p.session_token is not None


def test_session_absolute_timeout_expires_token() -> None:
    """After absoluteTimeout the token no longer pins; a new one is issued."""
    cfg = SessionConfig.from_persistence(RULE, SessionPersistence(absolute_timeout=60.0))
    b = balancer(5)
    address, token = _start(b, cfg, now=1000.0)
    assert send(b, 1059.0, session=cfg, session_token=token).session_token is None
    renewed = send(b, 1061.0, session=cfg, session_token=token)
    assert renewed.session_token is not None and renewed.session_token != token
    untimed = session_token(COOKIE, address, 0.0)  # issued before a timeout was configured
    assert send(b, 1062.0, session=cfg, session_token=untimed).session_token is not None


def test_session_foreign_header_value_hashed_consistently() -> None:
    """A header value the client chose itself pins by hash and gets no token back."""
    cfg = SessionConfig.from_persistence(RULE, SessionPersistence(type="Header", name="x-user"))
    b = balancer(7)
    seen = {send(b, 0.0, session=cfg, session_token="alice").address for _ in range(10)}
    assert len(seen) == 1
    p = send(b, 0.0, session=cfg, session_token="alice")
    assert p.session_token is None
    others = {send(b, 0.0, session=cfg, session_token=f"user{i}").address for i in range(40)}
    assert len(others) > 3


def test_session_pinned_endpoint_full_overflows() -> None:
    """A pinned endpoint at its limit gives Overflow rather than silently moving the session."""
    b = balancer(3, config=BalancerConfig(limits=EndpointLimits(max_concurrent=1)))
    address, token = _start(b)
    held = must_pick(b.pick(SVC, now=0.0, session=COOKIE, session_token=token))
    assert held.address == address
    got = b.pick(SVC, now=0.0, session=COOKIE, session_token=token)
    assert isinstance(got, Overflow) and address in got.reason
