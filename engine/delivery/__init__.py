"""Delivering notifications: fan-out to users, email over SMTP with retries, the in-app inbox and digests.

Reads the outbox that `engine.work.notifications` fills in the step's own transaction.

May import: `engine.insight` and everything below it; independent of `engine.reports`.
"""
