"""Celery tasks of the OAuth server: thin, they call a service."""

from __future__ import annotations

from celery import shared_task

from gateway.oauth.services import oauth_unconsented_clients_prune


@shared_task(name="gateway.oauth_prune_unconsented")  # type: ignore[untyped-decorator]
def prune_unconsented_clients() -> int:
    """Delete registered OAuth clients nobody consented to in time (beat: hourly)."""
    return oauth_unconsented_clients_prune()
