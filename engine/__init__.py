"""Tansiq's engine: directives as BPMN processes with deadlines that act.

The engine imports no web or Prefect code; `api` and `workflows` are thin adapters over it.
"""
