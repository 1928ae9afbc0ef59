"""The import contract: the layers of DESIGN.md, checked on every module's imports (an AST walk).

Dependencies point down. A module may import what its layer allows and
nothing else of ours; the pure layers import no trio, libp2p or rocksdict.
``TYPE_CHECKING`` imports count too: a cycle hidden from the runtime is still
a cycle in the design (it is how the node used to reach into the driver).
Equivalent to an import-linter "layers" plus "forbidden" contract, without
the dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "p2pcity"

PURE = ("p2pcity.crypto", "p2pcity.codec", "p2pcity.types", "p2pcity._typing", "p2pcity._files")
# package -> the packages of ours it may import (besides itself and the pure ones).
ALLOWED: dict[str, tuple[str, ...]] = {
    "p2pcity.crypto": ("p2pcity.codec", "p2pcity._files"),
    "p2pcity.codec": (),
    "p2pcity.types": (),
    "p2pcity.consensus": (),
    "p2pcity.store": (),
    "p2pcity.mempool": (),
    "p2pcity.chain": ("p2pcity.store",),
    "p2pcity.net": ("p2pcity.config",),
}
# Modules that must not import these (prefixes), at all.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # The decision step and what it is built from run in the simulator: no event loop, no network.
    "p2pcity.node.replica": ("trio", "libp2p", "p2pcity.net", "p2pcity.node.service", "p2pcity.node.driver"),
    "p2pcity.node.recovery": ("trio", "libp2p", "p2pcity.net", "p2pcity.node.service"),
    "p2pcity.node.ledger": ("trio", "libp2p", "p2pcity.net", "p2pcity.node.service"),
    "p2pcity.node.districts": ("trio", "libp2p", "p2pcity.net", "p2pcity.node.service"),
    # The parts take ports, never the node that wires them (the old node <-> driver cycle).
    "p2pcity.node.driver": ("p2pcity.node.service", "p2pcity.net"),
    "p2pcity.node.protocols": ("p2pcity.node.service", "p2pcity.node.driver"),
    "p2pcity.node.sync": ("p2pcity.node.service", "p2pcity.node.driver"),
    "p2pcity.node.ports": ("p2pcity.node.service", "p2pcity.node.driver"),
}
PURE_FORBIDDEN = ("trio", "libp2p", "rocksdict", "socket", "hypercorn", "fastapi", "httpx")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> str | None:
    return next((layer for layer in ALLOWED if within(name, layer)), None)


def violations() -> list[str]:
    found = []
    for path in modules():
        name = module_name(path)
        layer = layer_of(name)
        for imported in imports_of(path):
            ours = within(imported, "p2pcity")
            if layer is not None and ours:
                allowed = (layer, *PURE, *ALLOWED[layer])
                if layer in PURE[:3] and layer != "p2pcity.types":
                    allowed = (layer, *ALLOWED[layer])
                if not any(within(imported, a) for a in allowed):
                    found.append(f"{name} imports {imported} (layer {layer} may not)")
            if layer in (*PURE, "p2pcity.consensus") and any(within(imported, f) for f in PURE_FORBIDDEN):
                found.append(f"{name} imports {imported} (a pure layer)")
            for module, banned in FORBIDDEN.items():
                if name == module and any(within(imported, b) for b in banned):
                    found.append(f"{name} imports {imported} (forbidden for it)")
    return found


def test_the_layers_hold() -> None:
    assert violations() == []


def test_the_contract_catches_a_planted_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted-bug control: the old driver's ``from p2pcity.node.service import Node`` is caught."""
    driver = PACKAGE / "node" / "driver.py"
    planted = tmp_path / "driver.py"
    planted.write_text(
        driver.read_text() + "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from p2pcity.node.service import Node\n"
    )
    monkeypatch.setattr(
        "tests.test_layers.modules",
        lambda: [planted if p == driver else p for p in sorted(PACKAGE.rglob("*.py"))],
    )
    monkeypatch.setattr(
        "tests.test_layers.module_name",
        lambda path: "p2pcity.node.driver" if path == planted else _module_name(path),
    )
    assert any("p2pcity.node.driver imports p2pcity.node.service" in v for v in violations())


_module_name = module_name
