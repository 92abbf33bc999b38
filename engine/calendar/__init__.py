"""Time as the unit counts it: durations, the business calendar and seasons.

Owns ISO 8601 durations and deadlines (`durations`), working days and hours, holidays and Hijri dates
(`business_calendar`) and the Hajj seasons whose mode and holidays the calendar follows (`seasons`).

May import: `engine.storage`, `engine.foundation`.
"""
