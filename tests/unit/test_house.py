"""The house keeps its shape (docs/design.md): the import contracts of pyproject.toml hold (floors, no circles, the
configuration on the ground floor), and every top-level room of the package stands on one of the floors."""

import pkgutil
from pathlib import Path

import pytest

import seca

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_every_room_of_the_package_stands_on_a_floor():
    floors = next(c for c in CONTRACTS if c["type"] == "layers")["layers"]
    placed = {name.strip() for floor in floors for name in floor.split("|")}
    rooms = {f"seca.{m.name}" for m in pkgutil.iter_modules(seca.__path__) if m.name != "__main__"}
    assert rooms == placed, (
        f"rooms without a floor: {sorted(rooms - placed)}; floors without a room: "
        f"{sorted(placed - rooms)} (pyproject.toml, [tool.importlinter])"
    )
