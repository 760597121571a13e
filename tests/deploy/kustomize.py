"""A small kustomize renderer for the features deploy/k8s uses (test-side; no kustomize binary).

Implemented: `resources` (files and directories holding a kustomization.yaml, depth first),
`namespace` (set on every namespaced object, and on RoleBinding subjects that name none), and
`patches` with `path` + optional `target` {kind, name}: strategic merge as kubectl does it for
these objects (maps merge recursively; lists of maps that all carry `name` merge by name; any
other list or value is replaced). Anything else in a kustomization is refused, so a manifest
that starts using another feature fails this test instead of being rendered wrongly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strategic_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        merged_list = [copy.deepcopy(x) for x in base]
        for item in patch:
            index = next((i for i, x in enumerate(merged_list) if x["name"] == item["name"]), None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    return all(
        obj.get("kind") == value if key == "kind" else obj["metadata"].get(key) == value
        for key, value in target.items()
    )


def render(directory: Path) -> list[dict[str, Any]]:
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomize features this renderer lacks: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else load_yaml_docs(path)
    for patch_spec in kustomization.get("patches", []):
        patch = yaml.safe_load((directory / patch_spec["path"]).read_text())
        target = patch_spec.get("target") or {
            "kind": patch["kind"],
            "name": patch["metadata"]["name"],
        }
        hits = [i for i, obj in enumerate(objects) if _matches(obj, target)]
        if not hits:
            raise ValueError(f"{directory}: patch {patch_spec['path']} matches nothing")
        for i in hits:
            objects[i] = strategic_merge(objects[i], patch)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            for subject in obj.get("subjects", []):
                subject.setdefault("namespace", namespace)
    return objects
