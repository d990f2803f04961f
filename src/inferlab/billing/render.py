"""An invoice as a standalone HTML page (every value escaped; no script, no external resource)."""

from __future__ import annotations

from html import escape

from inferlab.billing.invoice import Invoice
from inferlab.billing.money import text

STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}"
         "th,td{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left}td.n,th.n{text-align:right}"
         "tfoot td{font-weight:600}.status{display:inline-block;padding:.1rem .5rem;border:1px solid #888;"
         "border-radius:.3rem}")


def _row(cells: list[str], numeric: set[int]) -> str:
    return "<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                            for i, c in enumerate(cells)) + "</tr>"


def invoice_html(invoice: Invoice) -> str:
    currency = escape(invoice.currency.upper())
    rows = []
    for line in invoice.lines:
        span = ""
        if line.start is not None and line.end is not None:
            span = f"{line.start:%Y-%m-%d %H:%M} – {line.end:%Y-%m-%d %H:%M} UTC"
        quantity = "" if line.kind not in ("usage", "tier") else \
            f"{line.quantity:,}" + (f" (+{line.included:,} included)" if line.included else "")
        unit = f"{line.unit_price.normalize():f}/M" if line.kind in ("usage", "tier") else ""
        rows.append(_row([escape(line.description), escape(span), escape(quantity), escape(unit),
                          escape(text(line.amount))], {2, 3, 4}))
    totals = [("Subtotal", invoice.subtotal), ("Credits applied", -invoice.credits_applied),
              ("Total", invoice.total), ("Paid", invoice.amount_paid), ("Refunded", invoice.amount_refunded),
              ("Amount due", invoice.amount_due)]
    foot = "".join(f'<tr><td colspan="4">{name}</td><td class="n">{escape(text(value))}</td></tr>'
                   for name, value in totals)
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Invoice {escape(invoice.id)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Invoice {escape(invoice.id)}</h1>"
        f"<p>Tenant <strong>{escape(invoice.tenant)}</strong> · plan {escape(invoice.plan)} · "
        f"<span class=\"status\">{escape(invoice.state)}</span></p>"
        f"<p>Period {invoice.period_start:%Y-%m-%d %H:%M} – {invoice.period_end:%Y-%m-%d %H:%M} UTC "
        f"(half-open) · amounts in {currency}</p>"
        "<table><thead><tr><th>Item</th><th>Time</th><th class=\"n\">Tokens</th><th class=\"n\">Unit price</th>"
        f"<th class=\"n\">Amount</th></tr></thead><tbody>{''.join(rows)}</tbody><tfoot>{foot}</tfoot></table>"
        "</body></html>"
    )


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a one-table PDF (fpdf2, pure Python: the ``pdf`` extra; imported only here).
    Text is Latin-1 in the core fonts: other characters print as ``?``."""
    from fpdf import FPDF

    def latin(value: str) -> str:
        return value.encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF(format="A4")
    pdf.set_compression(False)  # small, and its text stays searchable by plain tools
    pdf.set_title(latin(f"Invoice {invoice.id}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, latin(f"Invoice {invoice.id}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, latin(f"Tenant {invoice.tenant} - plan {invoice.plan} - {invoice.state}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Period {invoice.period_start:%Y-%m-%d %H:%M} - {invoice.period_end:%Y-%m-%d %H:%M} UTC, "
                   f"amounts in {invoice.currency.upper()}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (95, 35, 30, 30)
    pdf.set_font("Helvetica", "B", 9)
    for width, head in zip(widths, ("Item", "Tokens", "Unit price /M", "Amount"), strict=True):
        pdf.cell(width, 7, head, border="B", align="L" if head == "Item" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for line in invoice.lines:
        unit = f"{line.unit_price.normalize():f}" if line.kind in ("usage", "tier") else ""
        tokens = f"{line.quantity:,}" if line.kind in ("usage", "tier") else ""
        cells = (latin(line.description)[:60], tokens, unit, text(line.amount))
        for width, cell, align in zip(widths, cells, "LRRR", strict=True):
            pdf.cell(width, 6, cell, align=align)
        pdf.ln()
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 9)
    for name, value in (("Subtotal", invoice.subtotal), ("Credits applied", -invoice.credits_applied),
                        ("Total", invoice.total), ("Paid", invoice.amount_paid),
                        ("Refunded", invoice.amount_refunded), ("Amount due", invoice.amount_due)):
        pdf.cell(sum(widths[:3]), 6, name, align="R")
        pdf.cell(widths[3], 6, text(value), align="R")
        pdf.ln()
    return bytes(pdf.output())
