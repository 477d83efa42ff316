"""What product code may import: never the development-only `portal.dev`; and migrations no
runtime code at all (a migration is a frozen snapshot)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

PRODUCT_PACKAGES = ("portal", "tenants", "registration", "payments", "consult")
DEV = "portal.dev"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_files() -> Iterator[Path]:
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "portal" / "dev"):
                continue
            yield path


def _imports(path: Path) -> Iterator[tuple[ast.AST, str]]:
    """(node, absolute module name) of every import in the file, at any depth, including
    `importlib.import_module("...")` / `__import__("...")` with a literal name."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield node, prefix
            for alias in node.names:  # `from portal import dev`
                yield node, f"{prefix}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            yield node, node.args[0].value


def _is_dev(name: str) -> bool:
    return name == DEV or name.startswith(DEV + ".")


def test_layers_product_never_imports_portal_dev():
    files = list(_product_files())
    assert len(files) > 100  # the walk found the product
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                 for path in files for node, name in _imports(path) if _is_dev(name)]
    assert offenders == []


def test_layers_import_walk_sees_relative_and_dynamic_imports(tmp_path, monkeypatch):
    """The check above would notice each way of reaching portal.dev."""
    import tests.portal.test_layers as layers

    monkeypatch.setattr(layers, "ROOT", tmp_path)
    (tmp_path / "portal" / "notifications").mkdir(parents=True)
    probe = tmp_path / "portal" / "notifications" / "probe.py"
    probe.write_text("from ..dev import fake_sms\n"
                     "from portal import dev\n"
                     "def f():\n"
                     "    import portal.dev.devstack\n"
                     "    importlib.import_module('portal.dev.sandbox_pay')\n")
    assert [n for _, n in layers._imports(probe) if layers._is_dev(n)] == [
        "portal.dev", "portal.dev.fake_sms", "portal.dev", "portal.dev.devstack",
        "portal.dev.sandbox_pay"]


def test_layers_migrations_import_no_runtime_code():
    """Inside a migration only Django and the standard library; at module level also the
    `<app>.models` / `validators` modules that Django's generated field references name."""
    offenders = []
    for path in _product_files():
        if path.parent.name != "migrations":
            continue
        for node, name in _imports(path):
            root = name.split(".")[0]
            if root not in PRODUCT_PACKAGES:
                continue
            generated_reference = (isinstance(node, ast.Import) and node.col_offset == 0
                                   and name.rsplit(".", 1)[-1] in ("models", "validators"))
            if not generated_reference:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == []
