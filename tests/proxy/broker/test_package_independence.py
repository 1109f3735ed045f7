"""The broker and the users import are packages of their own: they import nothing from the
rest of `proxy` but the HTTP plumbing below both (the service imports them, never the other way
round)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import proxy

_PROXY = Path(proxy.__file__).parent
# Each package and what it may import from `proxy`: itself and the shared HTTP plumbing, and
# the users import the broker.
_ALLOWED = {
    "broker": ("proxy.broker", "proxy.http"),
    "users_import": ("proxy.users_import", "proxy.broker", "proxy.http"),
    # The exports run their commands with the CLI's output and exit codes.
    "users_export": ("proxy.users_export", "proxy.users_import", "proxy.http", "proxy.cli"),
    "connections_export": (
        "proxy.connections_export",
        "proxy.users_export",
        "proxy.http",
        "proxy.cli",
    ),
}


def _imported_modules(path: Path) -> list[str]:
    package = ".".join(path.relative_to(_PROXY.parent).with_suffix("").parts[:-1])
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module is not None:
                names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(_ALLOWED))
def test_package_imports_nothing_else_from_proxy(package: str) -> None:
    allowed = _ALLOWED[package]
    modules = sorted((_PROXY / package).rglob("*.py"))
    assert modules, f"no modules found under proxy/{package}"
    reaching_back = [
        f"{path.relative_to(_PROXY.parent)}: {name}"
        for path in modules
        for name in _imported_modules(path)
        if (name == "proxy" or name.startswith("proxy."))
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert reaching_back == []
