"""branchenv: ephemeral feature-branch environments on AWS (the library behind app.py)."""
