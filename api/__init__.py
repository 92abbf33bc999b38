"""Tansiq's adapters for people and other systems: the command line, and (next) REST and web UI.

Thin: they validate, authorise, call `engine`, and render.
"""
