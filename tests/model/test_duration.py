"""GEP-2257 durations: which spellings parse, what they mean, and the canonical output."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.model import format_duration, parse_duration

VALID = [
    ("1h", 3600.0),
    ("0s", 0.0),
    ("500ms", 0.5),
    ("1h30m", 5400.0),
    ("2h600ms", 7200.6),
    ("10s", 10.0),
    ("1m1s", 61.0),
    ("99999ms", 99.999),
    ("1h1m1s1ms", 3661.001),
    ("30s30s", 60.0),  # repeated units are allowed (discouraged), and add up
]

INVALID = [
    "1.5s",  # no fractions
    "0",  # no bare zero
    "-1s",  # no negatives
    "+1s",
    "1d",  # no days
    "1h1m1s1ms1h",  # five components
    "100000s",  # six digits
    "",
    "s",
    "1 s",
    " 1s",
    "1S",
    "1us",
    "1ns",
    "1h 30m",
]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_parse_duration_valid_vector_gives_seconds(text: str, seconds: float) -> None:
    """Valid GEP-2257 strings sum their components (SPEC-NOTES §5.1, checklist 95)."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", INVALID)
def test_parse_duration_invalid_vector_gives_none(text: str) -> None:
    """Fractions, signs, days, bare 0, >4 parts and >5 digits are not durations (checklist 95)."""
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400.0, "1h30m"), (0.0, "0s"), (7200.6, "2h600ms"), (0.5, "500ms"), (3600.0, "1h"),
     (61.0, "1m1s"), (90.0, "1m30s"), (3661.001, "1h1m1s1ms")],
)
def test_format_duration_seconds_gives_canonical_form(seconds: float, text: str) -> None:
    """Printing uses the canonical form: largest units first, zero parts omitted (checklist 95)."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["30s30s", "90s", "60m", "1000ms"])
def test_format_duration_non_canonical_input_normalizes(text: str) -> None:
    """Non-canonical spellings print in canonical form (``90s`` → ``1m30s``) (checklist 95)."""
    canonical = format_duration(parse_duration(text) or -1)
    assert canonical != text
    assert parse_duration(canonical) == parse_duration(text)


@settings(max_examples=100, deadline=None)
@given(ms=st.integers(min_value=0, max_value=4 * 99999 * 1000))
def test_format_duration_roundtrip_any_milliseconds_parses_back(ms: int) -> None:
    """Canonical output always parses back to the same value (SPEC-NOTES §5.1, checklist 95)."""
    text = format_duration(ms / 1000)
    assert parse_duration(text) == pytest.approx(ms / 1000)
