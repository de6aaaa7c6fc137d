"""The import graph points one way: no cycle between any two first-party modules.

Function-local imports count as edges (they are dependencies all the same); imports
under ``if TYPE_CHECKING:`` do not (they never run). The layer contracts themselves
(entry points above services above records, no devstack in production code, no Flask
in services) are import-linter's, in pyproject.toml, run by ``make lint``.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

PACKAGES = ("app", "tasks", "models", "devstack")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *PACKAGES,
        include_external_packages=False,
        exclude_type_checking_imports=True,
        cache_dir=None,
    )


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph: every group of modules in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


class TestImportGraph:
    def test_no_import_cycles(self, graph: grimp.ImportGraph) -> None:
        cycles = strongly_connected(graph)
        assert cycles == [], "modules that import each other: " + "; ".join(
            " <-> ".join(group) for group in cycles
        )

    def test_function_local_imports_are_edges(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        package = tmp_path / "knot"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "a.py").write_text("from knot import b\n")
        (package / "b.py").write_text("def late():\n    from knot import a\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        knot = grimp.build_graph("knot", cache_dir=None)
        assert strongly_connected(knot) == [["knot.a", "knot.b"]]

    def test_covers_every_package(self, graph: grimp.ImportGraph) -> None:
        assert {module.split(".")[0] for module in graph.modules} == set(PACKAGES)

    def test_a_cycle_is_reported(self) -> None:
        fake = grimp.ImportGraph()
        for module in ("a", "a.x", "a.y", "a.z"):
            fake.add_module(module)
        fake.add_import(importer="a.x", imported="a.y")
        fake.add_import(importer="a.y", imported="a.x")
        fake.add_import(importer="a.z", imported="a.x")
        assert strongly_connected(fake) == [["a.x", "a.y"]]
