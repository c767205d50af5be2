"""Offline deployment tooling: stage settings, `make package`, merge templates, policy
checks, cfn-lint, the moto stand-in and project copy for the deploy rehearsal.

Chalice never packages this directory (it ships app.py, chalicelib/ and vendor/ only).
"""
