"""The ``meshclient`` command: the resolve contract of DESIGN.md, ``validate`` and ``routes``."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from meshclient.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "manifests"

# DESIGN.md "The resolve contract": the top-level fields and the fields of each part.
TOP = {"action", "status", "location", "route", "parent", "backends", "request",
       "response_headers", "mirrors", "timeouts", "retry", "via", "reasons"}
# Additions beyond DESIGN.md that meshclient documents (never renames of the above).
TOP_EXTRA = {"gateway_address", "session_persistence"}
ROUTE = {"kind", "namespace", "name", "rule", "rule_name"}
PARENT = {"kind", "namespace", "name", "section"}
BACKEND = {"kind", "namespace", "name", "port", "weight"}
REQUEST = {"method", "scheme", "host", "path", "headers"}
ACTIONS = {"forward", "redirect", "respond", "reject", "passthrough"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def resolve_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "resolve", "--config", str(EXAMPLES), *argv, "--json")
    assert code == 0
    (line,) = out.splitlines()
    got: dict[str, Any] = json.loads(line)
    return got


def check_shape(out: dict[str, Any]) -> None:
    assert set(out) <= TOP | TOP_EXTRA, set(out) - TOP - TOP_EXTRA
    assert out["action"] in ACTIONS
    assert set(out["request"]) == REQUEST
    if "route" in out:
        assert set(out["route"]) == ROUTE
    if "parent" in out:
        assert set(out["parent"]) == PARENT
    for b in out.get("backends", ()):
        assert set(b) >= BACKEND
    if "via" in out:
        assert out["via"] in ("direct", "gateway")


class TestResolveSingle:
    def test_forward_json_fields_named_as_design(self, capsys: pytest.CaptureFixture[str],
                                                 ) -> None:
        """A forwarded request's JSON uses DESIGN.md's field names and values (resolve
        contract)."""
        out = resolve_json(capsys, "http://reviews.internal.example.com/api/reviews/1?x=1")
        check_shape(out)
        assert out["action"] == "forward"
        assert out["route"] == {"kind": "HTTPRoute", "namespace": "shop", "name": "reviews",
                                "rule": 1, "rule_name": "api"}
        assert out["parent"] == {"kind": "Gateway", "namespace": "infra", "name": "internal",
                                 "section": "http"}
        assert [(b["name"], b["port"], b["weight"]) for b in out["backends"]] == [
            ("reviews-v1", 8080, 90), ("reviews-v2", 8080, 10)]
        assert out["backends"][0]["kind"] == "Service"
        assert out["request"] == {"method": "GET", "scheme": "http",
                                  "host": "reviews.internal.example.com",
                                  "path": "/api/reviews/1?x=1", "headers": []}
        assert out["timeouts"] == {"request": 2.0, "backend_request": 0.5}
        assert {k: out["retry"][k] for k in ("attempts", "codes", "backoff")} == {
            "attempts": 2, "codes": [502, 503], "backoff": 0.05}
        assert out["via"] == "direct"

    def test_header_flag_and_method_flag(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``-H 'Name: value'`` and ``-X`` feed the request (resolve contract)."""
        out = resolve_json(capsys, "-X", "post", "-H", "X-Tester: yes",
                           "http://reviews.internal.example.com/api/x")
        assert out["route"]["rule_name"] == "v2-for-testers"
        assert out["request"]["method"] == "POST"
        assert out["request"]["headers"] == [["x-tester", "yes"]]

    def test_redirect_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A redirect carries ``status`` and an absolute ``location`` (resolve contract)."""
        out = resolve_json(capsys, "http://reviews.internal.example.com/old?page=2")
        check_shape(out)
        assert (out["action"], out["status"]) == ("redirect", 301)
        assert out["location"] == "http://reviews.internal.example.com/api?page=2"

    def test_reject_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No matching rule on a handled host → ``reject`` 404 (resolve contract)."""
        out = resolve_json(capsys, "http://reviews.internal.example.com/nothing")
        check_shape(out)
        assert (out["action"], out["status"]) == ("reject", 404)

    def test_via_gateway_json_with_reasons(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unimplemented filter → ``via: gateway`` with ``reasons`` (resolve contract)."""
        out = resolve_json(capsys, "http://legacy.internal.example.com/")
        check_shape(out)
        assert out["via"] == "gateway"
        assert out["reasons"] and all(isinstance(r, str) for r in out["reasons"])

    def test_respond_json_for_preflight(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A CORS preflight → ``respond`` with headers in ``response_headers.set``."""
        out = resolve_json(capsys, "-X", "OPTIONS", "-H", "Origin: https://shop.example.com",
                           "-H", "Access-Control-Request-Method: POST",
                           "http://ratings.internal.example.com/v1/x")
        check_shape(out)
        assert out["action"] == "respond"
        assert set(out["response_headers"]) == {"set", "add", "remove"}
        assert ["access-control-allow-origin", "https://shop.example.com"] in (
            out["response_headers"]["set"])

    def test_mirrors_and_headers_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``mirrors`` entries carry ``backend`` and ``percent`` (resolve contract)."""
        out = resolve_json(capsys, "http://ratings.internal.example.com/v1/x")
        check_shape(out)
        (m,) = out["mirrors"]
        assert set(m) == {"backend", "percent"}
        assert m["percent"] == 10
        assert set(m["backend"]) == {"kind", "namespace", "name", "port"}
        assert ["x-route", "ratings-v1"] in out["request"]["headers"]

    def test_passthrough_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A host meshclient does not handle → ``passthrough`` (resolve contract)."""
        out = resolve_json(capsys, "http://www.python.org/")
        check_shape(out)
        assert out["action"] == "passthrough"

    def test_mesh_service_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A GAMMA route's parent is the Service (resolve contract, SPEC-NOTES §7)."""
        out = resolve_json(capsys, "--namespace", "shop", "http://payments:8080/pay")
        check_shape(out)
        assert out["parent"]["kind"] == "Service"
        assert [b["weight"] for b in out["backends"]] == [9, 1]

    def test_text_output_names_action_and_route(self, capsys: pytest.CaptureFixture[str],
                                                ) -> None:
        """Without ``--json`` a readable summary is printed."""
        code, out, _ = run(capsys, "resolve", "--config", str(EXAMPLES),
                           "http://reviews.internal.example.com/api/x")
        assert code == 0
        assert out.startswith("forward")
        assert "shop/reviews" in out

    def test_bad_header_flag_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed ``-H`` is a usage error (exit 2)."""
        code, _, err = run(capsys, "resolve", "--config", str(EXAMPLES), "-H", "nocolon",
                           "http://a.example.com/")
        assert code == 2
        assert "nocolon" in err

    def test_bad_url_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A URL that is not absolute http(s) is a usage error (exit 2)."""
        code, _, err = run(capsys, "resolve", "--config", str(EXAMPLES), "ftp://x/")
        assert code == 2
        assert "ftp://x/" in err

    def test_gateway_selection_flag(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--gateway NS/NAME`` limits the Gateways acted for (resolve contract)."""
        out = resolve_json(capsys, "--gateway", "infra/other",
                           "http://reviews.internal.example.com/api/x")
        assert out["action"] == "passthrough"


class TestResolveLines:
    def test_json_lines_one_answer_per_line_in_order(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """JSON lines in → one JSON decision per line out, in order; bad lines answered with
        an error line without stopping (DESIGN.md resolve contract)."""
        lines = [
            {"method": "GET", "url": "http://reviews.internal.example.com/api/1"},
            "this is not json",
            {"url": "http://reviews.internal.example.com/old"},
            ["not", "an", "object"],
            {"url": "not a url"},
            {"method": "GET", "url": "http://reviews.internal.example.com/api/1",
             "headers": {"x-tester": "yes", "x-multi": ["1", "2"]}},
            {"url": 5},
            {"url": "http://reviews.internal.example.com/", "headers": {"a": 1}},
            {"url": "http://www.python.org/"},
        ]
        stdin = "\n".join(line if isinstance(line, str) else json.dumps(line)
                          for line in lines) + "\n"
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code, out, _ = run(capsys, "resolve", "--config", str(EXAMPLES))
        assert code == 0
        got = [json.loads(x) for x in out.splitlines()]
        assert len(got) == len(lines)
        assert [g["action"] for g in got] == ["forward", "error", "redirect", "error", "error",
                                              "forward", "error", "error", "passthrough"]
        assert got[0]["route"]["rule_name"] == "api"
        assert got[5]["route"]["rule_name"] == "v2-for-testers"
        assert ["x-multi", "1"] in got[5]["request"]["headers"]
        assert ["x-multi", "2"] in got[5]["request"]["headers"]
        for g in got:
            if g["action"] == "error":
                assert isinstance(g["error"], str) and g["error"]
            else:
                check_shape(g)

    def test_json_lines_output_flushed_per_line(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each answer is one line: tools can read replies as they send (resolve contract)."""
        monkeypatch.setattr("sys.stdin", io.StringIO(
            json.dumps({"url": "http://reviews.internal.example.com/api"}) + "\n"))
        _, out, _ = run(capsys, "resolve", "--config", str(EXAMPLES))
        assert out.count("\n") == 1
        assert out.endswith("\n")


class TestValidate:
    def test_examples_validate_clean(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The shipped examples are valid: exit status 0 (issue: validate)."""
        code, out, _ = run(capsys, "validate", str(EXAMPLES))
        assert code == 0
        assert "REJECTED" not in out
        assert "HTTPRoute shop/reviews" in out

    def test_rejected_object_exit_non_zero_with_reason(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A rejected object gives a non-zero exit and the spec's reason (issue: validate,
        checklist 162)."""
        (tmp_path / "bad.yaml").write_text(textwrap.dedent("""\
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: gw, namespace: default}
            spec:
              gatewayClassName: internal
              listeners: [{name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}]
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: lost, namespace: default}
            spec:
              parentRefs: [{name: gw}]
              hostnames: [other.org]
              rules: [{backendRefs: [{name: svc, port: 80}]}]
            """))
        code, out, _ = run(capsys, "validate", str(tmp_path))
        assert code != 0
        assert "REJECTED" in out
        assert "NoMatchingListenerHostname" in out

    def test_validate_json_lines(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``validate --json`` prints one status object per line with its conditions."""
        code, out, _ = run(capsys, "validate", "--json", str(EXAMPLES))
        assert code == 0
        rows = [json.loads(x) for x in out.splitlines()]
        route = next(r for r in rows if r["kind"] == "HTTPRoute" and r["name"] == "reviews")
        assert {"type": "Accepted", "status": "True", "reason": "Accepted",
                "message": ""} in route["conditions"]

    def test_validate_broken_yaml_exit_non_zero(self, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
        """A file that cannot be read is a problem: non-zero exit (issue: validate)."""
        (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
        code, out, _ = run(capsys, "validate", str(tmp_path))
        assert code != 0
        assert "error" in out


class TestRoutes:
    def test_routes_lists_example_hostnames_and_backends(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``routes`` prints hostname → route/rule → backends for the examples (issue)."""
        code, out, _ = run(capsys, "routes", str(EXAMPLES))
        assert code == 0
        for host in ("reviews.internal.example.com", "ratings.internal.example.com",
                     "legacy.internal.example.com", "payments.shop.svc.cluster.local"):
            assert host in out
        assert "shop/reviews" in out
        assert "reviews-v1" in out
        assert "via gateway" in out
        assert "redirect 301" in out
