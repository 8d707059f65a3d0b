"""The package reads as the pipeline: each stage imports only from the stages before it, and no cycle; its
functions stay short, the runner keeps to its core, and no test reaches into a private name."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import lens_relearn
from lens_relearn.study.analysis import ANALYSES
from lens_relearn.study.removal import REMOVALS

PACKAGE = Path(lens_relearn.__file__).parent
# Shared helpers first, then the pipeline's stages in order, then the entry points.
ORDER = [
    "errors",
    "parallel",
    "allocator",
    "files",
    "stats",
    "models",
    "data",
    "tagger",
    "neurons",
    "study",
    "removals",
    "analyses",
    "views",
    "cli",
    "__main__",
    "__init__",
]


def modules() -> dict[str, Path]:
    return {
        ".".join(("lens_relearn", *path.relative_to(PACKAGE).with_suffix("").parts)): path
        for path in PACKAGE.rglob("*.py")
    }


def imported(path: Path) -> set[str]:
    """Every ``lens_relearn`` module a file imports, at any depth (function-level imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lens_relearn"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("lens_relearn"))
    known = modules()
    return {
        name if name in known else f"{name}.__init__" for name in names if name in known or f"{name}.__init__" in known
    } - {"lens_relearn.__init__"}


def stage(module: str) -> int:
    parts = module.split(".")
    return ORDER.index(parts[1] if len(parts) > 1 else "__init__")


def test_every_module_belongs_to_a_known_stage():
    assert {module.split(".")[1] for module in modules() if module != "lens_relearn.__init__"} <= set(ORDER)


def test_imports_point_only_to_the_same_or_earlier_stages():
    backwards = [
        f"{module} imports {target}"
        for module, path in modules().items()
        for target in imported(path)
        if stage(target) > stage(module)
    ]
    assert not backwards, "\n".join(backwards)


def test_no_import_cycle():
    graph = {module: imported(path) for module, path in modules().items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


MAX_FUNCTION_LINES = 60  # after the docstring
MAX_RUNNER_LINES = 300


def test_no_function_is_longer_than_sixty_lines_after_its_docstring():
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = node.body[0]
                has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                start = (first.end_lineno or first.lineno) + 1 if has_docstring else first.lineno
                if (length := (node.end_lineno or start) - start + 1) > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


def test_the_runner_keeps_to_its_core():
    runner = PACKAGE / "study" / "runner.py"
    assert len(runner.read_text().splitlines()) <= MAX_RUNNER_LINES
    assert not {module for module in imported(runner) if ".analyses" in module or ".removals" in module}
    analyses = {type(analysis).__name__ for analysis in ANALYSES} | set(ANALYSES.names())
    removals = {type(removal).__name__ for removal in REMOVALS} | {f'"{name}"' for name in REMOVALS.names()}
    identifiers = {node.id for node in ast.walk(ast.parse(runner.read_text())) if isinstance(node, ast.Name)}
    strings = {ast.unparse(node) for node in ast.walk(ast.parse(runner.read_text())) if isinstance(node, ast.Constant)}
    assert not (identifiers | strings) & (analyses | removals)


def private_patches(source: str) -> list[str]:
    """Every ``setattr(target, "name", ...)`` (monkeypatch's, a MonkeyPatch context's) of a name starting with
    ``_``, or on an object whose dotted path holds one, in a test's source.

    Example:
        >>> private_patches('monkeypatch.setattr(runner._Study, "_arm", kill)\\npatch.setattr(passes, "encode", f)')
        ['runner._Study._arm']
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setattr":
            target, name = node.args[0], node.args[1] if len(node.args) > 1 else None
            dotted = ast.unparse(target)
            attribute = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else ""
            if any(part.startswith("_") for part in [*dotted.split("."), attribute] if part):
                found.append(f"{dotted}.{attribute}")
    return found


def test_no_test_patches_a_private_name():
    tests = Path(__file__).parents[1]
    patched = [f"{path.name}: {name}" for path in tests.rglob("*.py") for name in private_patches(path.read_text())]
    assert not patched, "\n".join(patched)
