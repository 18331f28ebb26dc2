"""Receipt: a till or card receipt from a shop, restaurant or service."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

MONEY = {"x-sql-type": "DECIMAL(18,2)"}
QTY = {"x-sql-type": "DECIMAL(18,4)"}


class ReceiptItem(BaseModel):
    """One purchased item."""

    model_config = ConfigDict(title="ReceiptItem")

    description: str | None = Field(None, description="Item name as printed.")
    quantity: Decimal | None = Field(None, description="Number of units.", json_schema_extra=QTY)
    unit_price: Decimal | None = Field(None, description="Price of one unit.", json_schema_extra=QTY)
    amount: Decimal | None = Field(None, description="Price of the line.", json_schema_extra=MONEY)


class Receipt(BaseModel):
    """A receipt for a purchase."""

    model_config = ConfigDict(title="receipt")

    merchant_name: str | None = Field(None, description="Name of the shop, restaurant or business.")
    merchant_address: str | None = Field(None, description="Address of the merchant, lines joined with ', '.")
    date: dt.date | None = Field(None, description="Date of purchase, as an ISO date YYYY-MM-DD.")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code, e.g. EUR.")
    tax: Decimal | None = Field(None, description="Tax included in the total, if printed.", json_schema_extra=MONEY)
    total: Decimal | None = Field(None, description="Total amount paid.", json_schema_extra=MONEY)
    items: list[ReceiptItem] = Field(default_factory=list, description="Purchased items, in printed order.")

    @classmethod
    def checks(cls) -> list:
        """Rules a receipt obeys; a failed one lowers confidence and is recorded, never drops a value."""
        from docpipe.evidence import rules as r

        return [r.items_sum_to("items", "amount", "total"), r.line_product("items", "quantity", "unit_price", "amount"),
                r.plausible_date("date"), r.iso4217("currency")]


SCHEMA = Receipt
