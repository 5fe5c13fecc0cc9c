"""Bodies sent to the admin, API and OAuth endpoints are bounded: a huge one is refused with 413
before the gateway stores it, declared or streamed without a length."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2

CHUNK = b"x" * 65_536
OVER_LIMIT_CHUNKS = 64  # 4 MiB, past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB)


def streamed(chunks: int) -> Iterator[bytes]:
    for _ in range(chunks):
        yield CHUNK


def test_a_body_declared_too_large_is_refused_with_413(gateway):
    response = httpx2.post(
        f"{gateway.url}/oauth/register/",
        content=b"{" + CHUNK * OVER_LIMIT_CHUNKS + b"}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.text == "Request body too large.\n"


def test_a_body_streamed_without_a_length_is_cut_off_with_413(gateway):
    response = httpx2.post(f"{gateway.url}/admin/login/", content=streamed(OVER_LIMIT_CHUNKS), timeout=30)
    assert response.status_code == 413


def test_an_ordinary_form_post_still_reaches_django(gateway):
    # the login form without a CSRF token: Django's own answer (403), not the body limit's
    response = httpx2.post(f"{gateway.url}/admin/login/", data={"username": "a", "password": "b"}, timeout=30)
    assert response.status_code == 403
    assert "CSRF" in response.text
