"""Time as the unit counts it: durations, the business calendar and seasons.

Owns ISO 8601 durations and deadlines (`durations`), working days and hours, holidays and Hijri dates
(`business_calendar`, with `parse_day`, the one reading of a typed Gregorian or Hijri day), the Hajj
seasons whose mode and holidays the calendar follows (`seasons`), and how dates and numbers read in
Arabic and English on pages, in emails and in reports (`formatting`).

May import: `engine.storage`, `engine.foundation`.
"""
