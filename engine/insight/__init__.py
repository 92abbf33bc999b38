"""Insight from kept figures: bottlenecks per step, escalation forecasts and recurring obstacles.

May import: `engine.feedback`, `engine.directives` and everything below them; never the reports, which
read it.
"""
