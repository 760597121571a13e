"""Counts the import edges a static tool resolves from the source tree, without installing it.

    python3 scripts/import_edges.py [REPO_ROOT]

An import counts when it names a file of the repository: relative imports resolve against the
importing file's folder, absolute ones against the repository root (so `wildrobot.workers.x`
resolves only where a wildrobot/workers/x.py exists, which it does not: setup.py's package_dir
maps the role folders there at install time). Prints the edge count and how many of the edges
stay inside one role (server, workers, clients, envs, ops). Issue 30's measure.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROLES = ("server", "workers", "clients", "envs", "ops")


def _module_exists(root: Path, parts: list[str]) -> bool:
    path = root.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported(node: ast.AST, package: list[str]) -> list[list[str]]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".") for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            module = package[: len(package) - node.level + 1]
            module += node.module.split(".") if node.module else []
        else:
            module = (node.module or "").split(".")
        return [module + [alias.name] for alias in node.names] + [module]
    return []


def edges(root: Path) -> set[tuple[str, str]]:
    listed = subprocess.check_output(["git", "-C", str(root), "ls-files", "*.py"], text=True)
    files = [f for f in listed.split() if f.split("/")[0] in (*ROLES, "wildrobot")]
    found: set[tuple[str, str]] = set()
    for name in files:
        tree = ast.parse((root / name).read_text())
        package = name.split("/")[:-1]
        for node in ast.walk(tree):
            for target in _imported(node, package):
                for k in range(len(target), 0, -1):  # the longest prefix that is a module
                    if _module_exists(root, target[:k]):
                        if "/".join(target[:k]) != name[:-3]:
                            found.add((name, "/".join(target[:k])))
                        break
    return found


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    found = edges(root)
    role = lambda path: path.split("/")[0]  # noqa: E731
    intra = [e for e in found if role(e[0]) == role(e[1]) and role(e[0]) in ROLES]
    print(f"edges {len(found)} intra-role {len(intra)}")


if __name__ == "__main__":
    main()
