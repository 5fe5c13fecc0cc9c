"""Request paths are normalised once, from the raw bytes; what cannot be normalised safely is refused."""

from __future__ import annotations

import pytest

from gateway.proxy.errors import InvalidRequest
from gateway.proxy.paths import check_query_string, normalize_proxy_path
from gateway.proxy.upstream import upstream_url


@pytest.mark.parametrize(
    ("raw", "slug", "subpath"),
    [
        ("/mcp/docs", "docs", ""),
        ("/mcp/docs/", "docs", "/"),
        ("/mcp/docs/v1/search", "docs", "/v1/search"),
        ("/mcp/docs/v1/search/", "docs", "/v1/search/"),
        ("/mcp/docs//v1///search", "docs", "/v1/search"),
        ("/mcp/docs/./v1/./search", "docs", "/v1/search"),
        ("/mcp/docs/public/../admin", "docs", "/admin"),
        ("/mcp/docs/public/%2e%2e/admin", "docs", "/admin"),
        ("/mcp/docs/public/%2E%2E/admin", "docs", "/admin"),
        ("/mcp/docs/public/.%2e/admin", "docs", "/admin"),
        ("/mcp/docs/public/%2e/x", "docs", "/public/x"),
        ("/mcp/docs/a/..", "docs", "/"),
        ("/mcp/docs/a/b/.", "docs", "/a/b/"),
        ("/mcp/%64ocs/x", "docs", "/x"),
        ("/mcp/docs/caf%C3%A9", "docs", "/café"),
        ("/mcp/docs/a%3Bb", "docs", "/a;b"),
        ("/mcp/docs/a%20b", "docs", "/a b"),
        ("/other/docs/x", "", ""),
        ("/mcp/", "", ""),
        ("/mcp/no.dots/x", "", ""),
    ],
)
def test_paths_normalise_to_one_form(raw, slug, subpath):
    normalized = normalize_proxy_path(raw)
    assert (normalized.slug, normalized.subpath) == (slug, subpath)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("/mcp/docs/..", "climbs above"),
        ("/mcp/docs/%2e%2e/admin", "climbs above"),
        ("/mcp/docs/a/../../other/x", "climbs above"),
        ("/mcp/docs/public/..%2fadmin", "encoded slash"),
        ("/mcp/docs/public/..%2Fadmin", "encoded slash"),
        ("/mcp/docs/public%2fadmin", "encoded slash"),
        ("/mcp/docs/public/..%5cadmin", "backslash"),
        ("/mcp/docs/public/..\\admin", "backslash"),
        ("/mcp/docs/public;/../admin", "path parameters"),
        ("/mcp/docs/public/;x", "path parameters"),
        ("/mcp/docs/a%00b", "control character"),
        ("/mcp/docs/a%0ab", "control character"),
        ("/mcp/docs/a%7fb", "control character"),
        ("/mcp/docs/a\x01b", "control characters"),
        ("/mcp/docs/a b", "spaces"),
        ("/mcp/docs/caf\xc3\xa9", "non-ASCII"),
        ("/mcp/docs/%ff", "UTF-8"),
        ("/mcp/docs/%c0%ae%c0%ae/admin", "UTF-8"),  # the overlong ".." of old IIS exploits
        ("/mcp/docs/%ed%a0%80", "UTF-8"),  # an encoded lone surrogate
        ("/mcp/docs/%zz", "two-digit"),
        ("/mcp/docs/%2", "two-digit"),
        ("/mcp/docs/%252e%252e/admin", "double percent"),
        ("/mcp/docs/%EF%BC%8E%EF%BC%8E/admin", "Unicode normalisation"),  # fullwidth ".."
        ("/mcp/docs/a%EF%BC%8Fb", "Unicode normalisation"),  # fullwidth "/"
    ],
)
def test_paths_that_cannot_be_normalised_safely_are_refused(raw, reason):
    with pytest.raises(InvalidRequest, match=reason):
        normalize_proxy_path(raw)


@pytest.mark.parametrize("query", ["q=a b", "q=\x00", "q=\x7f", "q=caf\xc3\xa9", "q=\t"])
def test_query_strings_with_spaces_controls_or_non_ascii_bytes_are_refused(query):
    with pytest.raises(InvalidRequest, match="query string"):
        check_query_string(query)


def test_a_percent_encoded_query_string_is_accepted_as_it_is():
    check_query_string("q=caf%C3%A9&x=%2F..%2F&y=a+b")


@pytest.mark.parametrize(
    ("subpath", "url"),
    [
        ("", "http://up/api/"),  # the target's own URL, as configured
        ("/", "http://up/api/"),
        ("/v1/search", "http://up/api/v1/search"),
        ("/café/a b", "http://up/api/caf%C3%A9/a%20b"),
        ("/a;b/%/?#", "http://up/api/a%3Bb/%25/%3F%23"),
        ("/user@host:1/x=1,2", "http://up/api/user@host:1/x=1,2"),
    ],
)
def test_the_upstream_url_is_the_normalised_sub_path_re_encoded_under_the_base(subpath, url):
    assert upstream_url("http://up/api/", subpath, "") == url


def test_the_query_string_is_forwarded_as_received():
    assert upstream_url("http://up/api", "/x", "q=a%2F..&b") == "http://up/api/x?q=a%2F..&b"
