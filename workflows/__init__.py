"""Prefect flows for the recurring reports: thin wrappers around engine report functions."""
