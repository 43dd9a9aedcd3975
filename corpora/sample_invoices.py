"""Sample corpus, part 1: invoices (one text-layer PDF, two scanned JPEGs).
"""

from __future__ import annotations

from decimal import Decimal

import pymupdf

from sample_layout import (Flow, GREY, HELV, HELV_B, HELV_I, LETTER, OUT, SOURCES, cents,
    money, new_doc, save_pdf, table, text)
from sample_scan import jpeg_bytes, scan, write_bytes


# --------------------------------------------------------------------------
# 1. invoices
# --------------------------------------------------------------------------

def invoice_page(doc, *, seller, seller_lines, accent, number, date, due, terms,
                 bill_to, items, tax_rate=None, tax_label="Sales tax", notes=(),
                 deposit=None, extra_meta=()):
    """Lay out one invoice page; returns a dict of computed amounts (as strings)."""
    page = doc.new_page(width=LETTER[0], height=LETTER[1])
    L, R = 54, 558
    page.draw_rect(pymupdf.Rect(0, 0, LETTER[0], 14), color=None, fill=accent)
    text(page, L, 62, seller, 20, HELV_B, color=accent)
    y = 80
    for ln in seller_lines:
        text(page, L, y, ln, 10.5)
        y += 14
    text(page, R, 62, "INVOICE", 24, HELV_B, align="right")
    meta = [("Invoice No.", number), ("Invoice date", date), ("Due date", due),
            ("Terms", terms), *extra_meta]
    my = 84
    for k, v in meta:
        text(page, R - 120, my, k + ":", 10.5, HELV_B, align="right")
        text(page, R, my, v, 10.5, align="right")
        my += 15
    y = max(y, my) + 18
    text(page, L, y, "BILL TO", 10.5, HELV_B, color=accent)
    for ln in bill_to:
        y += 14
        text(page, L, y, ln, 10.5)
    y += 26

    rows = [["Description", "Qty", "Unit price", "Amount"]]
    subtotal = Decimal("0")
    for desc, qty, price in items:
        amt = cents(Decimal(str(qty)) * Decimal(str(price)))
        subtotal += amt
        rows.append([desc, f"{qty:g}", money(cents(price)), money(amt)])
    widths = [282, 50, 86, 86]
    y = table(page, L, y, widths, rows, size=10.5,
              aligns=["left", "right", "right", "right"])
    amounts = {"subtotal": money(subtotal)}
    total = subtotal
    summary = [("Subtotal", money(subtotal))]
    if tax_rate is not None:
        tax = cents(subtotal * Decimal(str(tax_rate)) / 100)
        total += tax
        summary.append((f"{tax_label} ({tax_rate}%)", money(tax)))
        amounts["tax"] = money(tax)
    summary.append(("Total", money(total)))
    amounts["total"] = money(total)
    if deposit is not None:
        dep_label, dep_amt = deposit
        summary.append((dep_label, "-" + money(cents(dep_amt))))
        balance = total - cents(dep_amt)
        summary.append(("Balance due", money(balance)))
        amounts["balance"] = money(balance)
    else:
        summary.append(("Amount due", money(total)))
    y += 8
    for i, (k, v) in enumerate(summary):
        y += 17
        bold = i >= len(summary) - 1
        text(page, R - 100, y, k, 11, HELV_B if bold else HELV, align="right")
        text(page, R - 5, y, v, 11, HELV_B if bold else HELV, align="right")
    y += 34
    f = Flow(page, L, R, y, size=10.5)
    for n in notes:
        f.para(n, gap=4)
    page.draw_line((L, 742), (R, 742), color=GREY, width=0.5)
    text(page, LETTER[0] / 2, 758, f"Thank you for your business - {seller}", 10,
         HELV_I, color=GREY, align="center")
    return amounts


def make_invoices(questions):
    # --- text-layer PDF -----------------------------------------------------
    rel = "invoices/bluefin-office-supply-invoice.pdf"
    doc = new_doc()
    amt = invoice_page(
        doc,
        seller="Bluefin Office Supply Co.",
        seller_lines=["4810 Commerce Park Drive, Unit 12", "Lakemont, OR 97118",
                      "orders@bluefin-office.example  |  (503) 555-0192"],
        accent=(0.05, 0.32, 0.60),
        number="BOS-24-0417", date="March 14, 2024", due="April 13, 2024",
        terms="Net 30", extra_meta=[("PO number", "HR-7731")],
        bill_to=["Halverson & Rusk Architects LLP", "Attn: Accounts Payable",
                 "219 Timberline Avenue, Floor 3", "Lakemont, OR 97120"],
        items=[("Copy paper, letter size, 10-ream case", 12, "54.99"),
               ("Toner cartridge, black, high yield (TN-880)", 6, "118.50"),
               ("Ergonomic mesh task chair, adjustable arms", 3, "289.00"),
               ("Whiteboard markers, assorted colors, 12-pack", 10, "14.25"),
               ("Bamboo desk organizer, five compartments", 4, "22.75")],
        tax_rate="7.25",
        notes=["Please remit payment to Bluefin Office Supply Co. by check or ACH. "
               "Bank: Cascade Federal Credit Union, routing 123000848, account ending 4417.",
               "Returns of unopened merchandise are accepted within 30 days with this invoice."],
    )
    save_pdf(doc, OUT / rel, "Invoice BOS-24-0417", author="Bluefin Office Supply Co.")
    SOURCES[rel] = doc
    questions.append(dict(
        question="What is the total amount due on the Bluefin Office Supply invoice for the architects' office?",
        path=rel, page=1, answer=amt["total"]))

    # --- scanned JPEG #1 (grayscale) -----------------------------------------
    rel = "invoices/cedar-ridge-landscaping-invoice.jpg"
    doc = new_doc()
    invoice_page(
        doc,
        seller="Cedar Ridge Landscaping",
        seller_lines=["Lawn care - Hardscaping - Tree work",
                      "77 Quarry Lane, Ashby Falls, VT 05733",
                      "Tel (802) 555-0164"],
        accent=(0.13, 0.42, 0.20),
        number="CRL-1182", date="June 3, 2024", due="June 17, 2024", terms="Net 14",
        bill_to=["Marisol Okafor", "27 Wren Hollow Road", "Ashby Falls, VT 05733"],
        items=[("Core aeration, front and back lawn", 1, "185.00"),
               ("Hardwood mulch, installed (cubic yards)", 8, "62.00"),
               ("Hedge trimming, boxwood and privet (hours)", 5, "55.00"),
               ("Storm cleanup: removal of fallen oak limb", 1, "340.00"),
               ("Green waste disposal fee", 1, "45.00")],
        notes=["Work completed May 28-30, 2024. Services are not subject to sales tax.",
               "Next scheduled visit: fall leaf removal in late October."],
    )
    img = scan(doc[0], seed=1101, angle=-0.8, gray=True)
    write_bytes(OUT / rel, jpeg_bytes(img))
    SOURCES[rel] = doc
    questions.append(dict(
        question="What's the invoice number for the landscaping work done at Wren Hollow Road?",
        path=rel, page=1, answer="CRL-1182"))

    # --- scanned JPEG #2 (colour) --------------------------------------------
    rel = "invoices/sunmeadow-catering-invoice.jpg"
    doc = new_doc()
    amt = invoice_page(
        doc,
        seller="Sunmeadow Catering Company",
        seller_lines=["Fresh food for gatherings large and small",
                      "1402 Orchard Street, Fairhaven, NC 27514",
                      "events@sunmeadow.example"],
        accent=(0.70, 0.33, 0.05),
        number="SMC-24-0093", date="September 21, 2024", due="October 5, 2024",
        terms="Due on receipt", extra_meta=[("Event date", "September 20, 2024")],
        bill_to=["Oakview Elementary School PTA", "Retirement luncheon for Dr. Helen Marsh",
                 "350 Birchwood Road, Fairhaven, NC 27516"],
        items=[("Lunch buffet, three entrees and salads (per guest)", 48, "24.50"),
               ("Vegetarian lasagna tray", 3, "68.00"),
               ("Coffee and tea service (per guest)", 48, "3.25"),
               ("Lemon sheet cake with inscription", 1, "85.00"),
               ("Serving staff (hours)", 8, "32.00")],
        tax_rate="6", deposit=("Deposit paid Aug 30", "500.00"),
        notes=["Chafing dishes and linens will be collected on September 23.",
               "Make checks payable to Sunmeadow Catering Company."],
    )
    img = scan(doc[0], seed=1202, angle=1.3, gray=False, tint=(250, 244, 228))
    write_bytes(OUT / rel, jpeg_bytes(img))
    SOURCES[rel] = doc
    questions.append(dict(
        question="How much is still owed to the caterer for the retirement luncheon after the deposit?",
        path=rel, page=1, answer=amt["balance"]))
