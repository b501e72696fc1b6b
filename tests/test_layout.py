"""The house's layout, checked from the source: which package may import which, no import
circles, and Ray imported only by the modules the README's code map names.

An import is every `import x` / `from x import y` in a product module, at any depth (a
function-level import counts: it still ties the two modules together), except those under
`if TYPE_CHECKING:`, which never run. `from pkg import sub` where `sub` is a module is an import
of `pkg.sub`, as Python resolves it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("names", "errors", "studyfiles", "trainables", "search_spaces", "study", "analysis")
# who may import whom (top-level packages); the ground floor stands on nothing of ours but facts
ALLOWED = {
    "names": set(),
    "errors": set(),
    "studyfiles": {"names", "errors"},
    "trainables": {"names", "errors"},
    "search_spaces": {"names", "errors", "trainables"},
    "analysis": {"names", "errors", "studyfiles", "trainables"},
    "study": {"names", "errors", "studyfiles", "trainables", "search_spaces", "analysis"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        single = ROOT / f"{top}.py"
        files = [single] if single.exists() else sorted((ROOT / top).rglob("*.py"))
        for path in files:
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules `path` imports: ours by module name, others by their top-level name."""
    out = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            out |= subs or {node.module}
    return out


def _graph() -> tuple[dict[str, Path], dict[str, set[str]]]:
    modules = _modules()
    return modules, {name: _imports(path, modules) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_each_package_imports_only_the_floors_below_it():
    modules, edges = _graph()
    wrong = []
    for name, targets in edges.items():
        top = name.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other in PACKAGES and other != top and other not in ALLOWED[top]:
                wrong.append(f"{modules[name].relative_to(ROOT)} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circles():
    _, edges = _graph()
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_ray_is_imported_only_by_the_modules_the_code_map_names():
    modules, edges = _graph()
    importing = {
        str(modules[name].relative_to(ROOT))
        for name, targets in edges.items()
        if any(t == "ray" or t.startswith("ray.") for t in targets)
    }
    readme = (ROOT / "README.md").read_text()
    line = re.search(r"^Ray is imported only by: (.+)$", readme, re.M)
    assert line, "the README's code map says which modules import Ray"
    named = {m.strip(" .`") for m in line.group(1).split(",")}
    assert importing == named
