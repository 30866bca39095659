"""Chat gateways: adapters between a chat platform and Qunfu's domain events and actions."""

from bot.gateways.base import ChatGateway, DeliveryUnknown, GatewayError

__all__ = ["ChatGateway", "DeliveryUnknown", "GatewayError"]
