"""The local development stack (`make serve`): moto S3, `chalice local`, API Gateway events.

Offline tooling; Chalice never packages this directory.
"""
