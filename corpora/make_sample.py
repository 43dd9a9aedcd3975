#!/usr/bin/env python3
"""Generate the pagerag sample corpus (corpora/sample/) and its question set.

Everything here is invented: companies, people, addresses and figures are
fictional.  The script is deterministic (fixed seeds, fixed PDF metadata, no
network) and only needs pymupdf, pillow and numpy:

    .venv/bin/python corpora/make_sample.py

It deletes and rewrites corpora/sample/ and rewrites
corpora/sample-questions.jsonl.  Every answer string in the question file is
checked against the text laid out on its page before that page is rasterised;
`corpora/check_sample.py` additionally OCRs the scanned files with tesseract.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter, ImageOps

HERE = Path(__file__).resolve().parent
OUT = HERE / "sample"
QUESTIONS = HERE / "sample-questions.jsonl"

DPI = 150
LETTER = (612, 792)           # points
SLIDE = (960, 540)            # 16:9 points
BLACK = (0, 0, 0)
GREY = (0.35, 0.35, 0.35)
FIXED_DATE = "D:20240601120000Z"

HELV, HELV_B, HELV_I = "helv", "hebo", "heit"
TIMES, TIMES_B = "tiro", "tibo"
COUR, COUR_B = "cour", "cobo"

# relpath -> in-memory source document (the layout before any scanning)
SOURCES: dict[str, pymupdf.Document] = {}


# --------------------------------------------------------------------------
# layout helpers
# --------------------------------------------------------------------------

def text_len(s: str, font: str, size: float) -> float:
    return pymupdf.get_text_length(s, fontname=font, fontsize=size)


def text(page, x, y, s, size=11, font=HELV, color=BLACK, align="left"):
    """Single line at baseline y. align: left / right / center (x is the anchor)."""
    if align != "left":
        w = text_len(s, font, size)
        x = x - w if align == "right" else x - w / 2
    page.insert_text((x, y), s, fontsize=size, fontname=font, color=color)


def wrap(s: str, width: float, font: str, size: float) -> list[str]:
    """Greedy word wrap; '~' is a non-breaking space (keeps answers on one line)."""
    lines, cur = [], ""
    for word in s.split():
        cand = word if not cur else cur + " " + word
        if cur and text_len(cand.replace("~", " "), font, size) > width:
            lines.append(cur)
            cur = word
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return [ln.replace("~", " ") for ln in lines]


class Flow:
    """Top-to-bottom text flow inside [x0, x1] starting at y."""

    def __init__(self, page, x0, x1, y, size=11, font=HELV, leading=1.38):
        self.page, self.x0, self.x1, self.y = page, x0, x1, y
        self.size, self.font, self.leading = size, font, leading

    def space(self, h):
        self.y += h

    def para(self, s, size=None, font=None, color=BLACK, indent=0, gap=7):
        size = size or self.size
        font = font or self.font
        for ln in wrap(s, self.x1 - self.x0 - indent, font, size):
            self.y += size * self.leading
            text(self.page, self.x0 + indent, self.y, ln, size, font, color)
        self.y += gap
        if self.y > self.page.rect.height - 40:
            raise ValueError(f"page overflow at: {s[:50]!r}")

    def heading(self, s, size=14, font=HELV_B, gap=4, rule=False):
        self.y += 6
        self.para(s, size=size, font=font, gap=gap)
        if rule:
            self.page.draw_line((self.x0, self.y), (self.x1, self.y), color=GREY, width=0.6)
            self.y += 4

    def bullets(self, items, size=None, font=None, gap=3, bullet_r=2.0):
        size = size or self.size
        font = font or self.font
        for it in items:
            lines = wrap(it, self.x1 - self.x0 - 16, font, size)
            for i, ln in enumerate(lines):
                self.y += size * self.leading
                if i == 0:
                    self.page.draw_circle((self.x0 + 5, self.y - size * 0.33), bullet_r,
                                          color=BLACK, fill=BLACK)
                text(self.page, self.x0 + 16, self.y, ln, size, font)
            self.y += gap
        self.y += 4


def table(page, x, y, widths, rows, size=10.5, font=HELV, head_font=HELV_B,
          aligns=None, row_h=None, header=True, grid=True, shade_header=True):
    """Simple ruled table; returns the y below it."""
    row_h = row_h or size * 1.9
    aligns = aligns or ["left"] * len(widths)
    total_w = sum(widths)
    for r, row in enumerate(rows):
        top = y + r * row_h
        if header and r == 0 and shade_header:
            page.draw_rect(pymupdf.Rect(x, top, x + total_w, top + row_h),
                           color=None, fill=(0.88, 0.88, 0.88))
        cx = x
        for c, cell in enumerate(row):
            f = head_font if (header and r == 0) else font
            base = top + row_h * 0.5 + size * 0.35
            if aligns[c] == "right":
                text(page, cx + widths[c] - 5, base, cell, size, f, align="right")
            elif aligns[c] == "center":
                text(page, cx + widths[c] / 2, base, cell, size, f, align="center")
            else:
                text(page, cx + 5, base, cell, size, f)
            cx += widths[c]
    bottom = y + len(rows) * row_h
    if grid:
        for r in range(len(rows) + 1):
            yy = y + r * row_h
            page.draw_line((x, yy), (x + total_w, yy), color=GREY, width=0.5)
        cx = x
        for w in [0] + widths:
            cx += w
            page.draw_line((cx, y), (cx, bottom), color=GREY, width=0.5)
    return bottom


def new_doc() -> pymupdf.Document:
    return pymupdf.open()


def money(d: Decimal) -> str:
    return f"${d:,.2f}"


def cents(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def save_pdf(doc: pymupdf.Document, path: Path, title: str, author: str = "",
             subject: str = "", keywords: str = ""):
    doc.set_metadata({
        "title": title, "author": author, "subject": subject, "keywords": keywords,
        "creator": "pagerag corpora/make_sample.py", "producer": "PyMuPDF",
        "creationDate": FIXED_DATE, "modDate": FIXED_DATE,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, garbage=4, deflate=True, no_new_id=True)


# --------------------------------------------------------------------------
# "scanner" and "phone camera" simulation
# --------------------------------------------------------------------------

def render(page, dpi=DPI) -> Image.Image:
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def scan(page, seed: int, angle: float, gray=True, noise=7.0,
         tint=(246, 242, 230), blur=0.5) -> Image.Image:
    """Flatbed-scan look: slight skew, optical blur, paper tint, uneven light, noise."""
    rng = np.random.RandomState(seed)
    img = render(page)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    a = np.asarray(img).astype(np.float32)
    h, w = a.shape[:2]
    a *= np.array(tint, np.float32) / 255.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.05, 0.05, size=2)
    shade = 1.0 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    a *= shade[..., None]
    a += rng.normal(0.0, noise, size=(h, w)).astype(np.float32)[..., None]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return img.convert("L") if gray else img


def phone_photo(page, seed: int, angle: float) -> Image.Image:
    """Phone-photo look: page lying on a darker desk, skewed, vignetted, warm light."""
    rng = np.random.RandomState(seed)
    img = render(page).filter(ImageFilter.GaussianBlur(0.6))
    paper = (250, 246, 236)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=paper)
    a = np.asarray(img).astype(np.float32) * (np.array(paper, np.float32) / 255.0)
    ph, pw = a.shape[:2]
    m = 70  # desk border around the sheet, in pixels
    desk = np.empty((ph + 2 * m, pw + 2 * m, 3), np.float32)
    desk[:] = (96, 82, 68)
    desk[m:m + ph, m:m + pw] = a
    h, w = desk.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx / w - 0.48) / 0.62) ** 2 + ((yy / h - 0.45) / 0.70) ** 2
    vignette = np.clip(1.0 - 0.42 * r2, 0.55, 1.0)
    desk *= vignette[..., None]
    desk *= np.array((1.0, 0.97, 0.90), np.float32)        # warm indoor light
    desk += rng.normal(0.0, 7.0, size=(h, w)).astype(np.float32)[..., None]
    return Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality=65, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, dpi=(DPI, DPI), optimize=True, **kw)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


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


# --------------------------------------------------------------------------
# 2. letter (phone photo with EXIF orientation)
# --------------------------------------------------------------------------

def make_letter(questions):
    rel = "letters/pinecrest-rent-increase-notice.jpg"
    doc = new_doc()
    page = doc.new_page(width=LETTER[0], height=LETTER[1])
    L, R = 72, 540
    text(page, L, 76, "PINECREST PROPERTY MANAGEMENT", 16, HELV_B, color=(0.15, 0.30, 0.22))
    text(page, L, 93, "2200 Alder Street, Suite 310  -  Brookhaven, MN 55420  -  (612) 555-0138", 10,
         color=GREY)
    page.draw_line((L, 102), (R, 102), color=(0.15, 0.30, 0.22), width=1.2)
    f = Flow(page, L, R, 128, size=12, font=TIMES, leading=1.32)
    f.para("August 12, 2024", gap=12)
    for ln in ["Ms. Danielle Ferris", "118 Larkspur Avenue, Apartment 4B", "Brookhaven, MN 55420"]:
        f.para(ln, gap=0)
    f.space(12)
    f.para("RE: Notice of rent adjustment and lease renewal", font=TIMES_B, gap=10)
    f.para("Dear Ms. Ferris,", gap=8)
    f.para("Thank you for being a resident at Larkspur Commons. We are writing to give you "
           "the advance notice required by your lease regarding a change in your monthly rent.",
           gap=8)
    f.para("Your current rent is $1,540.00 per month. Beginning November~1,~2024, your new "
           "monthly rent will be $1,625.00, an increase of $85.00 (5.5%). The increase reflects "
           "higher property taxes and the cost of the new boiler installed in the building this "
           "spring.", gap=8)
    f.para("If you wish to renew your lease for another twelve months at the new rate, please "
           "sign the enclosed renewal agreement and return it to our office by September~30,~2024. "
           "Your security deposit of $1,540.00 will carry over to the new lease term and no "
           "additional deposit is required.", gap=8)
    f.para("If you do not plan to renew, please provide written notice of your move-out date "
           "no later than September 30, 2024. Rent is still due on the first day of each month "
           "and may be paid through the resident portal or by check.", gap=8)
    f.para("Please contact our office Monday through Friday, 9:00 a.m. to 5:00 p.m., if you "
           "have any questions about this notice.", gap=14)
    f.para("Sincerely,", gap=26)
    page.draw_polyline([(L + 4, f.y - 8), (L + 22, f.y - 26), (L + 30, f.y - 6), (L + 46, f.y - 22),
                        (L + 60, f.y - 9), (L + 84, f.y - 18), (L + 110, f.y - 12)],
                       color=(0.1, 0.1, 0.45), width=1.3)
    f.para("Robert Haines", gap=0)
    f.para("Property Manager, Pinecrest Property Management", gap=0)
    f.para("Enclosure: Lease renewal agreement", size=10.5, gap=0)

    upright = phone_photo(page, seed=2201, angle=1.5)
    # EXIF Orientation 6 = "rotate 90 deg clockwise to display", so the stored
    # pixels are the upright picture turned 90 deg counter-clockwise.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Generic"          # Make
    exif[0x0110] = "Phone Camera"     # Model
    data = jpeg_bytes(stored, exif=exif.tobytes())
    write_bytes(OUT / rel, data)
    # self-check: EXIF transpose must give back the upright geometry
    with Image.open(OUT / rel) as im:
        assert im.getexif().get(0x0112) == 6
        assert im.size == (upright.height, upright.width)
        assert ImageOps.exif_transpose(im).size == upright.size
    SOURCES[rel] = doc
    questions.append(dict(
        question="What will my monthly rent be after the increase starting in November?",
        path=rel, page=1, answer="$1,625.00"))


# --------------------------------------------------------------------------
# 3. filled form (scanned PNG)
# --------------------------------------------------------------------------

def make_form(questions):
    rel = "forms/vehicle-registration-application.png"
    vin = "4HD7SC2K9LM083516"
    doc = new_doc()
    page = doc.new_page(width=LETTER[0], height=LETTER[1])
    L, R = 48, 564
    text(page, L, 58, "STATE OF WESTMARCH", 11, HELV_B)
    text(page, L, 72, "Department of Motor Vehicles", 11)
    text(page, R, 58, "FORM MV-21", 12, HELV_B, align="right")
    text(page, R, 72, "Rev. 03/2023", 10, align="right")
    text(page, LETTER[0] / 2, 104, "APPLICATION FOR VEHICLE REGISTRATION", 16, HELV_B, align="center")
    text(page, LETTER[0] / 2, 120, "Print clearly in black ink. Incomplete applications will be returned.",
         10, HELV_I, align="center")

    def section(y, title):
        page.draw_rect(pymupdf.Rect(L, y, R, y + 18), color=BLACK, fill=(0.82, 0.82, 0.82), width=0.6)
        text(page, L + 6, y + 13, title, 10.5, HELV_B)
        return y + 18

    def fields(y, cells, h=36):
        """cells: list of (label, value, width_fraction)."""
        x = L
        for label, value, frac in cells:
            w = (R - L) * frac
            page.draw_rect(pymupdf.Rect(x, y, x + w, y + h), color=BLACK, width=0.6)
            text(page, x + 4, y + 12, label, 10, color=(0.2, 0.2, 0.2))
            if value:
                text(page, x + 6, y + 29, value, 12, COUR_B, color=(0.05, 0.05, 0.30))
            x += w
        return y + h

    y = section(138, "SECTION A - OWNER INFORMATION")
    y = fields(y, [("Full legal name (last, first, middle)", "LINDQVIST, TOBIAS ARNE", 0.62),
                   ("Date of birth", "11/04/1986", 0.38)])
    y = fields(y, [("Residence address", "5 Fennimore Court", 0.62),
                   ("Driver license number", "WM-D4471-2290", 0.38)])
    y = fields(y, [("City", "Stonebridge", 0.40), ("State", "WM", 0.12),
                   ("ZIP code", "60418", 0.18), ("Daytime phone", "(555) 014-2387", 0.30)])
    y = section(y + 10, "SECTION B - VEHICLE INFORMATION")
    y = fields(y, [("Vehicle identification number (VIN)", vin, 0.62),
                   ("Model year", "2020", 0.18), ("Body style", "Wagon", 0.20)])
    y = fields(y, [("Make", "HALDEN", 0.30), ("Model", "SIERRA CREST", 0.32),
                   ("Color", "Slate gray", 0.38)])
    y = fields(y, [("Odometer reading (miles)", "48,213", 0.30), ("Fuel type", "Gasoline", 0.32),
                   ("Gross vehicle weight (lbs)", "4,120", 0.38)])
    y = fields(y, [("Lienholder (if any)", "Granite Valley Credit Union", 0.62),
                   ("Date acquired", "06/28/2024", 0.38)])
    y = section(y + 10, "SECTION C - REGISTRATION TYPE AND PLATES")
    y += 8
    opts = [("New registration", True), ("Renewal", False),
            ("Transfer from another state", True), ("Duplicate", False)]
    for i, (label, checked) in enumerate(opts):
        cx = L + 8 + (i % 2) * 258
        cy = y + (i // 2) * 22
        page.draw_rect(pymupdf.Rect(cx, cy, cx + 12, cy + 12), color=BLACK, width=0.8)
        if checked:
            page.draw_line((cx + 2, cy + 2), (cx + 10, cy + 10), color=(0.05, 0.05, 0.3), width=1.6)
            page.draw_line((cx + 10, cy + 2), (cx + 2, cy + 10), color=(0.05, 0.05, 0.3), width=1.6)
        text(page, cx + 18, cy + 10.5, label, 11)
    y += 50
    y = fields(y, [("Previous state and plate", "OH  JKP-4412", 0.40),
                   ("Plate type requested", "Standard passenger", 0.34),
                   ("Registration fee", "$96.00", 0.26)])
    y = section(y + 10, "SECTION D - INSURANCE AND CERTIFICATION")
    y = fields(y, [("Insurance company", "Meridian Mutual Insurance", 0.50),
                   ("Policy number", "MMI-5502817", 0.50)])
    f = Flow(page, L, R, y + 4, size=10)
    f.para("I certify under penalty of perjury that the information on this application is true "
           "and correct, and that the vehicle is insured as required by Westmarch law.", gap=6)
    y = f.y + 22
    page.draw_line((L, y), (L + 300, y), color=BLACK, width=0.6)
    page.draw_polyline([(L + 20, y - 4), (L + 40, y - 22), (L + 52, y - 3), (L + 70, y - 18),
                        (L + 90, y - 6), (L + 118, y - 20), (L + 150, y - 8)],
                       color=(0.05, 0.05, 0.35), width=1.4)
    text(page, L, y + 12, "Signature of owner", 10)
    page.draw_line((L + 340, y), (R, y), color=BLACK, width=0.6)
    text(page, L + 346, y - 5, "07/15/2024", 12, COUR_B, color=(0.05, 0.05, 0.30))
    text(page, L + 340, y + 12, "Date signed", 10)
    text(page, LETTER[0] / 2, 760, "FOR OFFICE USE ONLY:  Clerk ______   Receipt ______   Plate issued ______",
         10, color=GREY, align="center")

    img = scan(page, seed=3301, angle=0.6, gray=True)
    # 8 grey levels (a cheap scanner's "grey" mode) keeps the noisy PNG small
    img = img.point(lambda v: (v // 32) * 255 // 7)
    (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT / rel, "PNG", optimize=True, dpi=(DPI, DPI))
    SOURCES[rel] = doc
    questions.append(dict(
        question="What is the VIN of the car on the vehicle registration application?",
        path=rel, page=1, answer=vin))


# --------------------------------------------------------------------------
# 4. slide (16:9 text-layer PDF)
# --------------------------------------------------------------------------

def make_slide(questions):
    rel = "slides/trailside-fy2024-sales-review.pdf"
    doc = new_doc()
    page = doc.new_page(width=SLIDE[0], height=SLIDE[1])
    green = (0.11, 0.36, 0.27)
    page.draw_rect(pymupdf.Rect(0, 0, SLIDE[0], 96), color=None, fill=green)
    text(page, 48, 62, "FY2024 Sales Review", 36, HELV_B, color=(1, 1, 1))
    text(page, SLIDE[0] - 48, 62, "Trailside Outdoor Gear", 16, HELV, color=(0.85, 0.95, 0.88),
         align="right")
    f = Flow(page, 48, 430, 120, size=17, leading=1.3)
    f.bullets(["Revenue reached $2.26M, up 21% over FY2023",
               "Online orders grew 38% year over year",
               "Kayaks and paddles were the fastest growing category",
               "New Boulder store opened in May",
               "Q4 dip follows the early end of the camping season"], gap=8, bullet_r=3.0)
    # bar chart
    cx0, cy0, cw, chh = 500, 140, 420, 300      # chart box
    text(page, cx0 + cw / 2, cy0 - 8, "Quarterly revenue, FY2024 ($K)", 15, HELV_B, align="center")
    base = cy0 + chh
    page.draw_line((cx0 + 30, cy0 + 10), (cx0 + 30, base), color=BLACK, width=1)
    page.draw_line((cx0 + 30, base), (cx0 + cw, base), color=BLACK, width=1)
    vmax = 800
    for tick in (0, 200, 400, 600, 800):
        ty = base - (chh - 20) * tick / vmax
        page.draw_line((cx0 + 26, ty), (cx0 + 30, ty), color=BLACK, width=1)
        if tick:
            page.draw_line((cx0 + 31, ty), (cx0 + cw, ty), color=(0.85, 0.85, 0.85), width=0.5)
        text(page, cx0 + 22, ty + 4, str(tick), 11, align="right")
    bars = [("Q1", 412), ("Q2", 538), ("Q3", 691), ("Q4", 619)]
    slot = (cw - 40) / len(bars)
    for i, (q, v) in enumerate(bars):
        bx = cx0 + 40 + i * slot + slot * 0.18
        bw = slot * 0.64
        top = base - (chh - 20) * v / vmax
        fill = (0.85, 0.45, 0.12) if q == "Q3" else (0.35, 0.58, 0.47)
        page.draw_rect(pymupdf.Rect(bx, top, bx + bw, base), color=None, fill=fill)
        text(page, bx + bw / 2, top - 6, f"${v}K", 14, HELV_B, align="center")
        text(page, bx + bw / 2, base + 18, q, 14, align="center")
    page.draw_line((48, 500), (SLIDE[0] - 48, 500), color=(0.7, 0.7, 0.7), width=0.5)
    text(page, 48, 520, "Board meeting, January 2025  |  Internal use only", 11, color=GREY)
    text(page, SLIDE[0] - 48, 520, "7", 11, color=GREY, align="right")
    save_pdf(doc, OUT / rel, "Trailside Outdoor Gear - FY2024 Sales Review",
             author="Trailside Outdoor Gear")
    SOURCES[rel] = doc
    questions.append(dict(
        question="On the Trailside sales review slide, what was revenue in the best quarter?",
        path=rel, page=1, answer="$691K"))


# --------------------------------------------------------------------------
# 5a. annual report (4-page text-layer PDF)
# --------------------------------------------------------------------------

REPORT_TITLE = "Harbor City Water Authority Annual Report 2023"


def report_page(doc, n, section):
    page = doc.new_page(width=LETTER[0], height=LETTER[1])
    blue = (0.05, 0.28, 0.50)
    page.draw_rect(pymupdf.Rect(0, 0, LETTER[0], 40), color=None, fill=blue)
    text(page, 54, 26, "Harbor City Water Authority", 12, HELV_B, color=(1, 1, 1))
    text(page, 558, 26, "Annual Report 2023", 12, color=(1, 1, 1), align="right")
    text(page, 54, 82, section, 20, HELV_B, color=blue)
    page.draw_line((54, 92), (558, 92), color=blue, width=1)
    page.draw_line((54, 752), (558, 752), color=GREY, width=0.5)
    text(page, 54, 768, REPORT_TITLE, 10, color=GREY)
    text(page, 558, 768, f"Page {n} of 4", 10, color=GREY, align="right")
    return page, Flow(page, 54, 558, 104, size=11)


def make_report(questions):
    rel = "reports/harbor-city-water-annual-report-2023.pdf"
    doc = new_doc()

    # page 1 - summary
    page, f = report_page(doc, 1, "1. Executive Summary")
    f.para("A message from General Manager Priya Raman", font=HELV_B, size=12, gap=4)
    f.para("2023 was a year of steady progress for the Harbor City Water Authority. We delivered "
           "38.6 billion gallons of drinking water to about 412,000 residents and 9,800 businesses "
           "in Harbor City and the Millbrook and Eastshore districts, without a single boil-water "
           "advisory for the third year in a row.")
    f.para("Our crews replaced 14.2~miles of aging cast-iron water main, the most in any year since "
           "the Authority was founded in 1961, and responded to 1,146 main breaks and service leaks "
           "with an average repair time of 6.5 hours. Non-revenue water, the share of treated water "
           "lost to leaks before it reaches a meter, fell from 17.8% to 15.1%.")
    f.para("Customers noticed the difference. The average wait on our customer service line dropped "
           "to 2 minutes 40 seconds, and 91% of surveyed households rated their service as good or "
           "excellent. The new online account portal now has 138,500 registered users.")
    f.heading("2023 at a glance", size=13)
    y = table(page, 54, f.y + 6, [300, 204], [
        ["Indicator", "2023"],
        ["Residents served", "412,000"],
        ["Water delivered", "38.6 billion gallons"],
        ["Water main replaced", "14.2 miles"],
        ["Main breaks and leaks repaired", "1,146"],
        ["Non-revenue water", "15.1%"],
        ["Employees", "486"],
    ], size=11, aligns=["left", "right"])
    questions.append(dict(
        question="How many miles of water main did Harbor City Water Authority replace in 2023?",
        path=rel, page=1, answer="14.2 miles"))

    # page 2 - water quality
    page, f = report_page(doc, 2, "2. Water Quality")
    f.para("The Authority's laboratory collected 18,450 samples from 212 monitoring sites across "
           "the distribution system in 2023, testing for more than 90 regulated and unregulated "
           "substances. Drinking water met every federal and state standard throughout the year.")
    f.para("The table below summarizes key results. Lead and copper are measured at the customer's "
           "tap in homes with older plumbing; the 90th percentile value is compared with the "
           "regulatory action level.")
    y = table(page, 54, f.y + 6, [190, 110, 130, 74], [
        ["Parameter", "2023 result", "Limit", "Status"],
        ["Lead (90th percentile)", "3.1 ppb", "15 ppb (action level)", "Meets"],
        ["Copper (90th percentile)", "0.21 mg/L", "1.3 mg/L (action level)", "Meets"],
        ["Nitrate", "1.8 mg/L", "10 mg/L", "Meets"],
        ["Total trihalomethanes", "41 ppb", "80 ppb", "Meets"],
        ["Turbidity (highest reading)", "0.12 NTU", "0.3 NTU", "Meets"],
        ["Fluoride (average)", "0.68 mg/L", "4.0 mg/L", "Meets"],
        ["Total coliform positive", "0 of 2,160", "5% of samples", "Meets"],
    ], size=10.5, aligns=["left", "right", "right", "center"])
    f.y = y + 14
    f.para("Source water comes from the Kessler River intake (62%) and the Granite Hill wellfield "
           "(38%). Both treatment plants use coagulation, filtration, ultraviolet disinfection and "
           "chloramine residual. The annual Consumer Confidence Report with full results for every "
           "tested substance is mailed to all customers each June.")
    questions.append(dict(
        question="What was the 90th percentile lead level measured in Harbor City's tap water in 2023?",
        path=rel, page=2, answer="3.1 ppb"))

    # page 3 - budget
    page, f = report_page(doc, 3, "3. Financial Overview and Budget")
    f.para("The Board of Commissioners adopted a 2023 operating budget of $86.4~million and a "
           "capital budget of $52.7~million. Operating revenue came in at $91.2 million, 2.8% above "
           "plan, mainly because of higher summer demand. The Authority kept its AA bond rating "
           "and ended the year with 212 days of cash on hand.")
    f.heading("Operating budget by category", size=13)
    y = table(page, 54, f.y + 6, [300, 102, 102], [
        ["Category", "Budget ($M)", "Share"],
        ["Personnel and benefits", "34.1", "39.5%"],
        ["Treatment chemicals and energy", "17.6", "20.4%"],
        ["Debt service", "19.8", "22.9%"],
        ["Maintenance and repairs", "9.3", "10.8%"],
        ["Administration and customer service", "5.6", "6.5%"],
        ["Total operating budget", "86.4", "100%"],
    ], size=10.5, aligns=["left", "right", "right"])
    f.y = y + 8
    f.heading("Major capital projects", size=13)
    f.bullets(["Water main replacement program: $21.5 million",
               "Kessler River intake screen upgrade: $11.2 million",
               "Granite Hill wellfield pump station rebuild: $8.9 million",
               "Meter replacement and data systems: $6.4 million",
               "Facility security and emergency generators: $4.7 million"], size=11)
    f.para("Capital projects are funded by revenue bonds (58%), a state revolving fund loan (27%) "
           "and cash reserves (15%).")
    questions.append(dict(
        question="In the 2023 water authority annual report, what was the capital budget?",
        path=rel, page=3, answer="$52.7 million"))

    # page 4 - outlook
    page, f = report_page(doc, 4, "4. Outlook 2024-2028")
    f.para("Looking ahead, the Authority's five-year plan focuses on resilience against drought and "
           "extreme storms, replacing lead service lines, and keeping bills affordable.")
    f.heading("Eastside Reservoir Expansion", size=13)
    f.para("Construction begins in spring 2024 on a new 1.2-billion-gallon storage basin next to "
           "the Eastside Reservoir. The $64 million project will give the city 45 days of emergency "
           "supply and is scheduled for completion in 2027.")
    f.heading("Rates", size=13)
    f.para("To pay for these investments the Board has proposed a rate increase of 3.5% for 2024, "
           "which would raise the average household water bill by about $2.10 per month. A public "
           "hearing on the proposal will be held on January 18, 2024 at City Hall.")
    f.heading("Lead service lines and smart meters", size=13)
    f.bullets(["Complete the inventory of all 131,000 service lines by October 2024",
               "Replace an estimated 3,900 lead service lines by 2028 at no cost to homeowners",
               "Install 95,000 smart meters by the end of 2026 for hourly usage data and leak alerts",
               "Expand the low-income bill assistance program to 6,000 households"], size=11)
    f.heading("Workforce", size=13)
    f.para("About a quarter of our employees will be eligible to retire within five years. A new "
           "apprenticeship program with Harbor City Community College will train 40 operators and "
           "field technicians by 2026.")
    questions.append(dict(
        question="What rate increase is the water authority proposing for 2024?",
        path=rel, page=4, answer="3.5%"))

    save_pdf(doc, OUT / rel, REPORT_TITLE, author="Harbor City Water Authority",
             subject="Annual report for fiscal year 2023",
             keywords="water quality, budget, capital projects, outlook")
    SOURCES[rel] = doc


# --------------------------------------------------------------------------
# 5b. meeting minutes (3-page scanned multi-frame TIFF)
# --------------------------------------------------------------------------

MINUTES = [
    dict(date="January 9, 2024", present="R. Okonkwo (chair), G. Achterberg, L. Pham, D. Sorensen, M. Ibarra",
         absent="none", director="Director Ana Vasquez",
         items=[
             ("Call to order", "The meeting was called to order at 6:32 p.m. in the Maple Room."),
             ("Director's report", "Circulation for 2023 was 214,300 items, up 6% from 2022. The new "
              "self-checkout stations are used for 58% of all loans."),
             ("Roof repair", "Two bids were received for repairing the leaking roof over the "
              "children's wing. The board voted 5-0 to award the roof repair contract to Brightline "
              "Roofing for $18,400, with work to start in April."),
             ("Holiday hours", "The library will close on Monday, February 19 for Presidents' Day."),
             ("Adjournment", "The meeting adjourned at 7:48 p.m. Next meeting: February 13, 2024."),
         ]),
    dict(date="February 13, 2024", present="R. Okonkwo (chair), G. Achterberg, L. Pham, M. Ibarra",
         absent="D. Sorensen", director="Director Ana Vasquez",
         items=[
             ("Call to order", "The meeting was called to order at 6:30 p.m. in the Maple Room."),
             ("Parking lot", "Trustees discussed the potholes and poor drainage behind the building. "
              "The board voted 4-0 to resurface the rear parking lot in May at a cost not to exceed "
              "$27,500, and to add two accessible spaces and a bicycle rack."),
             ("Meeting room policy", "Nonprofit groups may now reserve the Maple Room up to four "
              "times per month free of charge."),
             ("Friends of the Library", "The spring book sale will be held March 22-24 in the lobby."),
             ("Adjournment", "The meeting adjourned at 7:35 p.m. Next meeting: March 12, 2024."),
         ]),
    dict(date="March 12, 2024", present="R. Okonkwo (chair), G. Achterberg, L. Pham, D. Sorensen, M. Ibarra",
         absent="none", director="Director Ana Vasquez",
         items=[
             ("Call to order", "The meeting was called to order at 6:35 p.m. in the Maple Room."),
             ("Election of officers", "Treasurer Lena Pham has stepped down from the post after "
              "four years. Trustee Gwen Achterberg was elected treasurer by unanimous vote and "
              "will begin her term on April 1."),
             ("Summer reading program", "The theme for this year's program will be \"Oceans of "
              "Stories\". Registration opens June 3 and the kickoff event with a marine biologist "
              "is planned for June 17."),
             ("Digital collection", "The board approved $4,200 to add 600 audiobook licenses."),
             ("Adjournment", "The meeting adjourned at 7:52 p.m. Next meeting: April 9, 2024."),
         ]),
]


def make_minutes(questions):
    rel = "reports/minutes-2024-q1.tif"
    doc = new_doc()
    for m in MINUTES:
        page = doc.new_page(width=LETTER[0], height=LETTER[1])
        text(page, LETTER[0] / 2, 70, "LINDEN PARK COMMUNITY LIBRARY", 15, TIMES_B, align="center")
        text(page, LETTER[0] / 2, 90, "Board of Trustees - Regular Meeting Minutes", 13, TIMES,
             align="center")
        text(page, LETTER[0] / 2, 110, m["date"], 13, TIMES_B, align="center")
        page.draw_line((72, 122), (540, 122), color=BLACK, width=0.8)
        f = Flow(page, 72, 540, 132, size=12, font=TIMES, leading=1.32)
        f.para(f"Present: {m['present']}. Absent: {m['absent']}. Also present: {m['director']}.",
               gap=10)
        for i, (head, body) in enumerate(m["items"], 1):
            f.para(f"{i}. {head}", font=TIMES_B, gap=1)
            f.para(body, indent=18, gap=9)
        f.space(20)
        f.para("Respectfully submitted, Marcus Ibarra, Secretary", font=TIMES, gap=2)
        f.para(f"Approved by the Board at its following meeting.", size=11, font=TIMES, gap=0)
    frames = [scan(doc[i], seed=5500 + i, angle=a, gray=True)
              for i, a in enumerate((0.9, -1.2, 0.5))]
    path = OUT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, "TIFF", save_all=True, append_images=frames[1:],
                   compression="jpeg", quality=65, dpi=(DPI, DPI))
    SOURCES[rel] = doc
    questions.extend([
        dict(question="How much did the library board agree to pay for the roof repair in January?",
             path=rel, page=1, answer="$18,400"),
        dict(question="What was decided about the parking lot in the February meeting?",
             path=rel, page=2, answer="resurface the rear parking lot"),
        dict(question="Who was elected the library board's new treasurer?",
             path=rel, page=3, answer="Gwen Achterberg"),
    ])


# --------------------------------------------------------------------------
# 6. image-only PDF (scanned warranty certificate + terms, no text layer)
# --------------------------------------------------------------------------

def make_warranty(questions):
    rel = "warranties/thermavale-heat-pump-warranty.pdf"
    src = new_doc()
    red = (0.55, 0.10, 0.10)

    # page 1 - certificate
    page = src.new_page(width=LETTER[0], height=LETTER[1])
    page.draw_rect(pymupdf.Rect(30, 30, 582, 762), color=red, width=3)
    page.draw_rect(pymupdf.Rect(38, 38, 574, 754), color=red, width=0.8)
    text(page, LETTER[0] / 2, 100, "THERMAVALE COMFORT SYSTEMS", 14, HELV_B, color=red, align="center")
    text(page, LETTER[0] / 2, 140, "Limited Warranty Certificate", 26, TIMES_B, align="center")
    text(page, LETTER[0] / 2, 166, "Residential Heat Pump Products", 13, TIMES, align="center")
    rows = [("Product", "HX-4200 air-source heat pump, 3.5 ton"),
            ("Serial number", "TV23-118406"),
            ("Indoor unit", "AH-36 air handler, serial TV23-220917"),
            ("Registered owner", "Evelyn and Marcus Brandt"),
            ("Installation address", "64 Juniper Ridge Road, Calloway, PA 17402"),
            ("Installation date", "October 11, 2023"),
            ("Installing dealer", "Keystone Comfort Heating & Air, License PA-HV-22817"),
            ("Registration number", "WR-2023-774912")]
    y = 214
    for k, v in rows:
        text(page, 90, y, k + ":", 12, HELV_B)
        text(page, 250, y, v, 12)
        y += 26
    y += 14
    text(page, LETTER[0] / 2, y, "COVERAGE PERIODS", 14, HELV_B, color=red, align="center")
    y = table(page, 110, y + 14, [230, 162], [
        ["Component", "Coverage"],
        ["Compressor", "12 years"],
        ["Coils and all other parts", "10 years"],
        ["Labor (installing dealer)", "2 years"],
        ["Unit replacement guarantee", "5 years"],
    ], size=12, aligns=["left", "center"])
    f = Flow(page, 90, 522, y + 14, size=11)
    f.para("Coverage begins on the installation date shown above and applies to the original owner "
           "and one subsequent owner at the same address. See the terms and conditions on the "
           "reverse side.", gap=20)
    page.draw_polyline([(340, f.y + 20), (360, f.y + 4), (372, f.y + 22), (392, f.y + 6),
                        (410, f.y + 18), (440, f.y + 10)], color=(0.1, 0.1, 0.4), width=1.3)
    page.draw_line((330, f.y + 26), (522, f.y + 26), color=BLACK, width=0.6)
    text(page, 330, f.y + 40, "Warranty Administrator", 10.5)

    # page 2 - terms
    page = src.new_page(width=LETTER[0], height=LETTER[1])
    text(page, LETTER[0] / 2, 70, "Terms and Conditions of the Limited Warranty", 16, TIMES_B,
         align="center")
    f = Flow(page, 66, 546, 84, size=11, font=TIMES, leading=1.3)
    sections = [
        ("1. What is covered",
         "Thermavale warrants the heat pump and air handler listed on the certificate against "
         "defects in materials and workmanship under normal residential use for the periods shown."),
        ("2. Registration",
         "Extended coverage applies only if the product was registered online within 60 days of "
         "installation. Unregistered products receive 5 years of parts coverage."),
        ("3. Maintenance",
         "The owner must have the system inspected by a licensed technician at least once every "
         "12 months and keep dated receipts. Air filters must be replaced as recommended."),
        ("4. What is not covered",
         "Damage from floods, fire, lightning, power surges, improper installation, unauthorized "
         "refrigerant, corrosive environments within one mile of salt water, or units moved from "
         "the original installation address. Routine maintenance and filters are not covered."),
        ("5. How to make a claim",
         "Contact the installing dealer first. If the dealer is unavailable, call the Thermavale "
         "Warranty Center at 1-800-555-0147 (Monday to Saturday, 8 a.m. to 8 p.m. Eastern) within "
         "30 days of discovering the problem. Have the serial number and proof of maintenance ready."),
        ("6. Replacement parts",
         "Parts replaced under warranty are covered only for the remainder of the original warranty "
         "period. Thermavale may supply new or factory-reconditioned parts."),
        ("7. Limitation of liability",
         "Thermavale is not responsible for incidental or consequential damages, such as higher "
         "utility bills or lodging costs, to the extent permitted by state law."),
    ]
    for head, body in sections:
        f.para(head, font=TIMES_B, gap=0)
        f.para(body, gap=8)
    f.para("Thermavale Comfort Systems, 900 Foundry Way, Lancaster Falls, PA 17540",
           size=10.5, font=HELV_I, gap=0)

    out = new_doc()
    for i, (a, seed) in enumerate(((-0.7, 6601), (1.1, 6602))):
        img = scan(src[i], seed=seed, angle=a, gray=True)
        data = jpeg_bytes(img)
        p = out.new_page(width=LETTER[0], height=LETTER[1])
        p.insert_image(p.rect, stream=data)
    save_pdf(out, OUT / rel, "Scanned document", author="", subject="")
    out.close()
    SOURCES[rel] = src
    questions.append(dict(
        question="What phone number do I call to make a claim on my heat pump warranty?",
        path=rel, page=2, answer="1-800-555-0147"))


# --------------------------------------------------------------------------

def norm(s: str) -> str:
    return " ".join(s.split())


def page_count(path: Path) -> int:
    if path.suffix.lower() == ".pdf":
        with pymupdf.open(path) as d:
            return d.page_count
    with Image.open(path) as im:
        return getattr(im, "n_frames", 1)


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    questions: list[dict] = []
    make_invoices(questions)
    make_letter(questions)
    make_form(questions)
    make_slide(questions)
    make_report(questions)
    make_minutes(questions)
    make_warranty(questions)

    # every answer must be on its page (in the laid-out source) and on no other
    # page of the corpus, so each question has a single right page
    for q in questions:
        hits = [(rel, i + 1) for rel, src in SOURCES.items() for i in range(src.page_count)
                if q["answer"] in norm(src[i].get_text())]
        if hits != [(q["path"], q["page"])]:
            raise SystemExit(f"answer {q['answer']!r} found on {hits}, "
                             f"expected only {q['path']} page {q['page']}")
    with open(QUESTIONS, "w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")

    files = sorted(p for p in OUT.rglob("*") if p.is_file())
    total_pages = total_bytes = 0
    print(f"{'file':58} {'pages':>5} {'KiB':>8}")
    for p in files:
        n, size = page_count(p), p.stat().st_size
        total_pages += n
        total_bytes += size
        print(f"{str(p.relative_to(OUT)):58} {n:5d} {size / 1024:8.1f}")
    print(f"{'TOTAL (' + str(len(files)) + ' files)':58} {total_pages:5d} {total_bytes / 1024:8.1f}")
    print(f"wrote {len(questions)} questions to {QUESTIONS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
