"""Sample corpus, parts 4 and 5: a 16:9 slide (text-layer PDF), a 4-page annual
report (text-layer PDF) and 3 pages of meeting minutes (scanned multi-frame TIFF).
"""

from __future__ import annotations

import pymupdf

from sample_layout import (BLACK, DPI, Flow, GREY, HELV, HELV_B, LETTER, OUT, SLIDE,
    SOURCES, TIMES, TIMES_B, new_doc, save_pdf, table, text)
from sample_scan import scan


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
