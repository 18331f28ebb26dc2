"""Invoice: who billed whom, when, for what, and how much."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

MONEY = {"x-sql-type": "DECIMAL(18,2)"}
QTY = {"x-sql-type": "DECIMAL(18,4)"}


class LineItem(BaseModel):
    """One billed line."""

    model_config = ConfigDict(title="LineItem")

    description: str | None = Field(None, description="What was sold or done, as printed on the line.")
    quantity: Decimal | None = Field(None, description="Number of units billed on the line.",
                                     json_schema_extra=QTY)
    unit_price: Decimal | None = Field(None, description="Net price of one unit, in the invoice currency.",
                                       json_schema_extra=QTY)
    amount: Decimal | None = Field(None, description="Line total as printed, in the invoice currency.",
                                   json_schema_extra=MONEY)


class Invoice(BaseModel):
    """An invoice or credit note from a vendor (seller) to a customer (buyer)."""

    model_config = ConfigDict(title="invoice")

    invoice_number: str | None = Field(None, description="The invoice's own number or ID as printed (e.g. 'INV-2024-0042').")
    invoice_date: date | None = Field(None, description="Date the invoice was issued, as an ISO date YYYY-MM-DD.")
    due_date: date | None = Field(None, description="Date payment is due, as an ISO date YYYY-MM-DD.")
    vendor_name: str | None = Field(None, description="Legal name of the company or person that issued the invoice (the seller).")
    vendor_address: str | None = Field(None, description="Postal address of the seller, lines joined with ', '.")
    vendor_tax_id: str | None = Field(None, description="Seller's VAT ID or tax number, as printed.")
    customer_name: str | None = Field(None, description="Name of the company or person billed (the buyer).")
    customer_address: str | None = Field(None, description="Postal address of the buyer, lines joined with ', '.")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$",
                                 description="ISO 4217 code of the invoice currency, e.g. EUR, USD, GBP.")
    subtotal: Decimal | None = Field(None, description="Total before tax (net amount).", json_schema_extra=MONEY)
    tax: Decimal | None = Field(None, description="Total tax (VAT, sales tax) amount.", json_schema_extra=MONEY)
    total: Decimal | None = Field(None, description="Grand total including tax, the amount invoiced.",
                                  json_schema_extra=MONEY)
    line_items: list[LineItem] = Field(default_factory=list, description="The billed lines, in printed order.")

    @classmethod
    def checks(cls) -> list:
        """Business rules an invoice obeys; a failed one lowers confidence and is recorded, never drops a value."""
        from docpipe.evidence import rules as r

        return [r.items_sum_to("line_items", "amount", "subtotal"), r.adds_up("subtotal", "tax", "total"),
                r.line_product("line_items", "quantity", "unit_price", "amount"),
                r.not_before("due_date", "invoice_date"), r.plausible_date("invoice_date"),
                r.iso4217("currency"), r.vat_id("vendor_tax_id")]


SCHEMA = Invoice
