"""Offline deployment tooling: merge templates, policy checks, the deploy rehearsal.

Chalice never packages this directory (it ships app.py, chalicelib/ and vendor/ only).
"""
