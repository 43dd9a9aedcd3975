"""Sample corpus, parts 2, 3 and 6: a rent letter (phone photo with EXIF
orientation), a filled vehicle-registration form (scanned PNG) and an
image-only warranty PDF (scanned pages, no text layer).
"""

from __future__ import annotations

import pymupdf
from PIL import Image, ImageOps

from sample_layout import (BLACK, COUR_B, DPI, Flow, GREY, HELV_B, HELV_I, LETTER, OUT,
    SOURCES, TIMES, TIMES_B, new_doc, save_pdf, table, text)
from sample_scan import jpeg_bytes, phone_photo, scan, write_bytes


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
