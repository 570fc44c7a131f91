"""The embedded stack: everything ``branchenv local`` runs on loopback instead of AWS.

Nothing here is used by the deployed Lambda; it must never be imported on the webhook path.
"""
