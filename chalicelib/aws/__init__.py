"""Gateways to AWS: one module per service, the only code in branchenv that calls boto3.

Each gateway takes its boto3 client in its constructor (tests pass moto-backed or
Stubber-wrapped clients) and translates botocore errors into :mod:`chalicelib.aws.errors`,
so business logic never sees a ``ClientError`` or a raw response dict.
"""
