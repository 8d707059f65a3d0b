"""The package reads as the pipeline: each stage imports only from the stages before it, and no cycle."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import lens_relearn

PACKAGE = Path(lens_relearn.__file__).parent
# Shared helpers first, then the pipeline's stages in order, then the entry points.
ORDER = [
    "errors",
    "parallel",
    "files",
    "stats",
    "models",
    "data",
    "tagger",
    "neurons",
    "study",
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
