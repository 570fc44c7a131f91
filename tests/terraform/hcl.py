"""Reads terraform/ with python-hcl2 into plain dicts, for the offline checks.

python-hcl2 keeps the quotes around string keys and values, marks blocks with
``__is_block__`` and keeps comments as ``__comments__``; :func:`load_module` removes all
three, so tests read ``variable["app_name"]`` and ``"${var.app_name}-build"``. Nothing here
runs terraform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
CHALICE_MODULE = TERRAFORM / "chalice"
EXAMPLE = TERRAFORM / "examples" / "complete"


def plain(value: Any) -> Any:
    """``value`` without python-hcl2's quoting and block markers."""
    if isinstance(value, dict):
        return {
            plain(k): plain(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_module(directory: Path) -> dict[str, Any]:
    """Every top-level block of the module's .tf files, merged by kind.

    ``variable``, ``output``, ``module``: name → body; ``locals``: name → value;
    ``resource``, ``data``: (type, name) → body.
    """
    merged: dict[str, Any] = {
        "variable": {},
        "output": {},
        "module": {},
        "locals": {},
        "resource": {},
        "data": {},
        "terraform": [],
    }
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed = plain(hcl2.load(handle))
        for kind in ("variable", "output", "module"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for type_name, named in block.items():
                    for name, body in named.items():
                        merged[kind][(type_name, name)] = body
        merged["terraform"].extend(parsed.get("terraform", []))
    return merged


def policy_statements(module: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The statements of ``data "aws_iam_policy_document" "<name>"``."""
    document = module["data"][("aws_iam_policy_document", name)]
    statements: list[dict[str, Any]] = document["statement"]
    return statements
