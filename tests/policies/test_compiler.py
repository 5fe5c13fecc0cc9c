"""Allow-rules: deny by default, method and path glob, first matching rule decides."""

import pytest

from policies.compiler import CompiledCredential, compile_glob, compile_rule
from policies.services import access_check
from tests.factories import compiled_credential


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("/tools/search", "/tools/search", True),
        ("/tools/search", "/tools/searchx", False),
        ("/tools/*", "/tools/search", True),
        ("/tools/*", "/tools/a/b", False),
        ("/tools/**", "/tools/a/b", True),
        ("/resources/docs://**", "/resources/docs://x/y", True),
        ("/tools/sea.ch", "/tools/search", False),
    ],
)
def test_globs(glob, path, matches):
    assert (compile_glob(glob).fullmatch(path) is not None) is matches


def _credential(*rules: tuple[str, str], revoked: bool = False) -> CompiledCredential:
    compiled = tuple(compile_rule(rule_id=i, method=m, path=p) for i, (m, p) in enumerate(rules, start=1))
    return compiled_credential(revoked=revoked, rules=compiled)


def test_nothing_is_allowed_without_a_rule():
    decision = access_check(credential=_credential(), method="POST", path="/tools/search")
    assert not decision.allowed and "deny by default" in decision.reason


def test_the_first_matching_rule_decides_and_is_named():
    credential = _credential(("GET", "/tools/*"), ("*", "/tools/*"), ("POST", "/tools/search"))
    decision = access_check(credential=credential, method="post", path="/tools/search")
    assert decision.allowed and decision.rule is not None and decision.rule.id == 2


def test_a_revoked_credential_is_denied_whatever_its_rules():
    decision = access_check(credential=_credential(("*", "/**"), revoked=True), method="GET", path="/")
    assert not decision.allowed and decision.reason == "credential is revoked"
