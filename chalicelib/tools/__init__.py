"""Operator tools that never run in Lambda: the ``branchenv`` CLI, its sub-commands, the
deployment through Terraform and the base-infrastructure description. The Chalice package
leaves this folder out.
"""
