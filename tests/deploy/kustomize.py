"""A small kustomize renderer for the features deploy/k8s uses (test-side; no kustomize binary).

Implemented: `resources` (files and directories holding a kustomization.yaml, depth first),
`namespace` (set on every namespaced object, and on RoleBinding subjects that name none),
`patches` with `path` + optional `target` {kind, name}: strategic merge as kubectl does it for
these objects (maps merge recursively; lists of maps that all carry `name` merge by name; any
other list or value is replaced), `images` (name -> newName/newTag/digest on every container and
init container) and `replacements` (source {kind, name, fieldPath} copied to targets' fieldPaths;
paths of keys and `[name=x]` list selectors), applied in kustomize's order: patches, namespace,
images, replacements. Anything else in a kustomization is refused, so a manifest that starts
using another feature fails this test instead of being rendered wrongly. When kubectl is on PATH,
tests/deploy compares this renderer with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "patches", "images", "replacements"}
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


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec", {})
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return spec.get("template", {}).get("spec")


def set_images(objects: list[dict[str, Any]], images: list[dict[str, str]]) -> None:
    """kustomize's `images`: a container image whose name (before `:tag`/`@digest`) matches
    gets newName, and newTag or digest (a digest wins)."""
    for obj in objects:
        pod = _pod_spec(obj)
        if not pod:
            continue
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            name = c["image"].split("@")[0]
            if ":" in name.rsplit("/", 1)[-1]:
                name = name.rsplit(":", 1)[0]
            for image in images:
                if image["name"] != name:
                    continue
                new = image.get("newName", name)
                if "digest" in image:
                    c["image"] = f"{new}@{image['digest']}"
                elif "newTag" in image:
                    c["image"] = f"{new}:{image['newTag']}"
                else:
                    c["image"] = new + c["image"][len(name) :]


def _steps(field_path: str) -> list[str]:
    return re.findall(r"\[[^\]]*\]|[^.\[\]]+", field_path)


def _walk(node: Any, steps: list[str]) -> tuple[Any, str | int]:
    """The parent of the last step and the key (or index) to read or write there."""
    for i, step in enumerate(steps):
        if step.startswith("["):
            key, value = step[1:-1].split("=", 1)
            index = next((j for j, x in enumerate(node) if x.get(key) == value), None)
            if index is None:
                raise ValueError(f"replacements: nothing matches {step}")
            if i == len(steps) - 1:
                return node, index
            node = node[index]
        else:
            if i == len(steps) - 1:
                return node, step
            node = node[step]
    raise ValueError("replacements: empty fieldPath")


def apply_replacements(objects: list[dict[str, Any]], replacements: list[dict[str, Any]]) -> None:
    for replacement in replacements:
        source = replacement["source"]
        (obj,) = [o for o in objects if _matches(o, {k: source[k] for k in ("kind", "name")})]
        parent, key = _walk(obj, _steps(source["fieldPath"]))
        value = parent[key]
        for target in replacement["targets"]:
            hits = [o for o in objects if _matches(o, target["select"])]
            if not hits:
                raise ValueError(f"replacements: {target['select']} matches nothing")
            for hit in hits:
                for field_path in target["fieldPaths"]:
                    parent, key = _walk(hit, _steps(field_path))
                    parent[key] = copy.deepcopy(value)


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
    set_images(objects, kustomization.get("images", []))
    apply_replacements(objects, kustomization.get("replacements", []))
    return objects
