"""GitHub, the source of truth about branches: the REST gateway (gateway), how branchenv
authenticates to it (auth: a token, or a GitHub App's installation tokens), and the one
place the installation's gateway is built from its settings (connect)."""
