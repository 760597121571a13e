"""The import layering and the env's public surface, checked on the source tree.

The contracts themselves (pyproject.toml [tool.importlinter]) run in scripts/test through
scripts/lint-imports; these tests keep them complete and cover what import-linter cannot see."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROLE_FOLDERS = ("server", "workers", "envs", "clients", "ops")
# Attribute names an env exposes privately; outside envs/ only the public API is used.
ENV_NAMES = ("env",)


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def test_the_core_contract_lists_every_core_module() -> None:
    core = {
        f"wildrobot.{path.stem if path.suffix == '.py' else path.name}"
        for path in (REPO / "wildrobot").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    listed = set(_contracts()["the core imports no role"]["source_modules"])
    assert core == listed, f"missing from the contract: {core - listed}; stale: {listed - core}"


def test_every_role_folder_is_mapped_and_forbidden_to_the_core() -> None:
    forbidden = set(_contracts()["the core imports no role"]["forbidden_modules"])
    assert forbidden == {f"wildrobot.{role}" for role in ROLE_FOLDERS}
    setup = (REPO / "setup.py").read_text()
    for role in ROLE_FOLDERS:
        assert f'"wildrobot.{role}": "{role}"' in setup


def _private_env_reads(path: Path, root: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        owner = node.value
        owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        if any(word in owner_name.lower() for word in ENV_NAMES):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_envs_reads_an_env_private_attribute() -> None:
    folders = [
        folder for folder in (*ROLE_FOLDERS, "wildrobot", "tests", "bench") if folder != "envs"
    ]
    found = [
        hit
        for folder in folders
        for path in sorted((REPO / folder).rglob("*.py"))
        if "v1" not in path.parts
        for hit in _private_env_reads(path)
    ]
    assert not found, "use the env's public API instead:\n" + "\n".join(found)


def test_the_private_attribute_check_sees_a_reach_in(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f(env, self):\n    return env._torso_id, self.env._floor_geom, env.sys\n")
    assert len(_private_env_reads(probe, root=tmp_path)) == 2


def test_test_support_modules_are_named_for_what_they_provide() -> None:
    vague = {"helpers.py", "common.py", "utils.py", "util.py", "misc.py", "fixtures.py"}
    found = [str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py") if p.name in vague]
    assert not found, f"name these for what they provide (tests/conftest.py): {found}"
