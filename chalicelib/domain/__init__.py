"""The domain: an environment's record and its store contract, the names derived from a branch,
the queue messages, the desired-state decision, and the settings. Depends on nothing else
in chalicelib.
"""
