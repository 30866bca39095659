"""The HTTP side of Qunfu: entry page, simulator page, webhooks and health, on FastAPI."""

from bot.web.app import create_app

__all__ = ["create_app"]
