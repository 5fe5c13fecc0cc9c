"""Admin login throttling (django-axes): guessing passwords stops after a few failures."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

PASSWORD = "correct-horse-battery-staple"
LOGIN = "/admin/login/"


@pytest.fixture
def staff(db: None, django_user_model: type[User]) -> list[User]:
    return [
        django_user_model.objects.create_superuser(name, f"{name}@example.com", PASSWORD) for name in "ab"
    ]


def login(username: str, password: str, address: str) -> int:
    """POST the admin login form as a browser at ``address`` would; the response's status."""
    response = Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})
    return response.status_code


def fail(times: int, *, username: str, address: str) -> None:
    """``times`` wrong passwords, each answered with the form again (below the limit)."""
    for _ in range(times):
        assert login(username, "wrong", address) == 200


def test_after_five_failures_the_account_is_locked_even_from_another_address(staff, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail(4, username="a", address="10.0.0.1")
    assert login("a", "wrong", "10.0.0.1") == 429  # the fifth failure locks

    assert login("a", PASSWORD, "10.0.0.2") == 429
    assert login("b", PASSWORD, "10.0.0.2") == 302  # other accounts from other addresses are unaffected


def test_after_five_failures_the_address_is_locked_even_for_another_account(staff):
    for username in ("x1", "x2", "x3", "x4"):
        fail(1, username=username, address="10.0.0.3")
    assert login("x5", "wrong", "10.0.0.3") == 429

    assert login("b", PASSWORD, "10.0.0.3") == 429
    assert login("b", PASSWORD, "10.0.0.4") == 302


def test_a_success_below_the_limit_clears_the_failures(staff):
    fail(4, username="a", address="10.0.0.5")
    assert login("a", PASSWORD, "10.0.0.5") == 302

    fail(4, username="a", address="10.0.0.5")

    assert login("a", PASSWORD, "10.0.0.5") == 302  # 8 failures in all, never 5 since a success


def test_the_lock_out_ends_after_the_cool_off(staff):
    from axes.models import AccessAttempt
    from django.utils import timezone

    fail(4, username="a", address="10.0.0.6")
    assert login("a", "wrong", "10.0.0.6") == 429
    assert login("a", PASSWORD, "10.0.0.6") == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=16))

    assert login("a", PASSWORD, "10.0.0.6") == 302
