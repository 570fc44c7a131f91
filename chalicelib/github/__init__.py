"""GitHub, the source of truth about branches: the REST gateway and how branchenv
authenticates to it (a token, or a GitHub App's installation tokens)."""
