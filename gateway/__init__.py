"""The MCP security gateway: Django project and core domain (tenants, targets, credentials)."""

from gateway.celery import app as celery_app

__all__ = ["celery_app"]
