"""The package's import layers: each module imports only from its own floor or the floors below, nothing
imports a console script, the benchmarks never import the tests, and no two modules import each other
(directly or around a loop), counting imports inside functions too; and no library file grows past 800 lines.

Floors, bottom to top (``lerobot_stamo/__init__.py`` registers everything and is outside them):

0. `errors`, `paths`, `console`, `columns`, `activation`, `visualization`, `cards`: no torch model, no dataset
   code;
1. `envs`, `robots`, `policies`: the simulated arm, the real arms, the two policies;
2. `transforms`: latent motion built on the `stamo` encoder (labeller, co-training mixes, probe), and
   `stand_ins`: tiny models and datasets made offline for the tests, benchmarks and demo;
3. `paper` and `benchmarks/`: experiments built on all of the above;
4. `scripts`: the console scripts, which nothing imports.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "lerobot_stamo"
FLOORS = {
    "errors": 0, "paths": 0, "console": 0, "columns": 0, "activation": 0, "visualization": 0, "cards": 0,
    "envs": 1, "robots": 1, "policies": 1,
    "transforms": 2, "stand_ins": 2,
    "loop": 3, "paper": 3, "benchmarks": 3,
    "scripts": 4,
}  # fmt: skip


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for the package and the benchmarks (`benchmarks.<name>`)."""
    files = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")) + sorted((REPO / "benchmarks").glob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules (of `known`, or others as named) that the file imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    edges = {}
    for name, path in files.items():
        targets = imports_of(name, path, known)
        edges[name] = {t for t in targets if t in known and t != PACKAGE and t != name}
        edges[name] |= {t for t in targets if t == "tests" or t.startswith("tests.")}
    return edges


def floor(name: str) -> int | None:
    parts = name.split(".")
    if parts[0] == "benchmarks":
        return FLOORS["benchmarks"]
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_has_a_floor():
    unplaced = [m for m in module_files() if m != PACKAGE and floor(m) is None]
    assert not unplaced, f"put these modules on a floor of {__name__}.FLOORS: {unplaced}"


def test_no_upward_imports():
    upward = [
        f"{source} (floor {floor(source)}) imports {target} (floor {floor(target)})"
        for source, targets in graph().items()
        if source != PACKAGE
        for target in sorted(targets)
        if not target.startswith("tests") and floor(target) > floor(source)
    ]
    assert not upward, "\n".join(upward)


def test_benchmarks_never_import_the_tests():
    offenders = [s for s, targets in graph().items() if any(t.startswith("tests") for t in targets)]
    assert not offenders, offenders
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        assert "sys.path.insert" not in path.read_text(), f"{path.name} edits sys.path"


def test_no_import_cycles():
    edges = graph()
    edges.pop(PACKAGE)
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(cycles)


def test_the_checks_see_imports():
    """The graph is not empty: a known import (the labeller opens a frozen stamo) is found."""
    assert "lerobot_stamo.policies.stamo" in graph()["lerobot_stamo.transforms.labelling"]


MAX_LIBRARY_LINES = 800  # LeRobot's largest policy file is about 800 lines


def test_no_library_file_over_800_lines():
    """Each file one idea: a library module that outgrows this is split by idea, not left to grow."""
    long = {
        str(path.relative_to(REPO)): n
        for path in sorted((REPO / PACKAGE).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LIBRARY_LINES
    }
    assert not long, f"split these by idea (over {MAX_LIBRARY_LINES} lines): {long}"
