"""Peewee models, one module per aggregate, and the migrations that create them.

Importing this package imports every model so ``models.ALL_MODELS`` is complete.
"""

from models.buyer import BuyerCustomer
from models.db import BaseModel, JSONField, bind_database, close_database, database, utcnow
from models.operator import Operator
from models.order import Order, OrderEvent
from models.outbox import Outbox
from models.product import Product
from models.promotion import Promotion
from models.refund import Refund
from models.reservation import Reservation
from models.shop_webhook import ShopDelivery, ShopEvent
from models.stock_adjustment import StockAdjustment
from models.webhook_event import WebhookEvent

# Creation order: referenced tables first.
ALL_MODELS: tuple[type[BaseModel], ...] = (
    Product,
    Order,
    OrderEvent,
    Reservation,
    WebhookEvent,
    Outbox,
    Refund,
    ShopEvent,
    ShopDelivery,
    BuyerCustomer,
    Operator,
    Promotion,
    StockAdjustment,
)

__all__ = [
    "ALL_MODELS",
    "BaseModel",
    "BuyerCustomer",
    "JSONField",
    "Operator",
    "Order",
    "OrderEvent",
    "Outbox",
    "Product",
    "Promotion",
    "Refund",
    "Reservation",
    "ShopDelivery",
    "ShopEvent",
    "StockAdjustment",
    "WebhookEvent",
    "bind_database",
    "close_database",
    "database",
    "utcnow",
]
