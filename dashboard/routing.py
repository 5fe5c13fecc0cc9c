"""The WebSocket application the gateway's ASGI entry point (gateway/asgi.py) hands every WebSocket
connection to: the session and user are read from the cookie (Channels' auth stack), the live feed
is the one route, and any other path is refused at the handshake."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from dashboard.consumers import LiveFeedConsumer

websocket_application = AuthMiddlewareStack(
    URLRouter(
        [
            path("dashboard/<int:tenant_id>/feed", LiveFeedConsumer.as_asgi()),
            re_path(r"", WebsocketDenier.as_asgi()),
        ]
    )
)
