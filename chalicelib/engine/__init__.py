"""The engine: converge (the only code that changes AWS), branchenv.yml, task definitions and
policy. Depends on the domain and the gateways.
"""
