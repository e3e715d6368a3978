"""The Kubernetes manifests (k8s/): every overlay renders with a current kubectl and
passes the Kubernetes 1.25-1.33 schemas strictly and the platform's own rules
(k8s/validate.py); a broken manifest fails that check; the secrets tool gives each
Secret only its own keys."""

from __future__ import annotations

import importlib.util
import shutil
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"tgmed_k8s_{name}", K8S / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = load("validate")
secrets_tool = load("secrets_from_env")


@pytest.mark.parametrize("overlay", ["local", "production"])
def test_overlay_renders_and_validates_strictly(overlay):
    assert validate.check(K8S / "overlays" / overlay) == []


@pytest.fixture
def k8s_copy(tmp_path):
    """A copy of k8s/ to break on purpose."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets", "__pycache__"))
    return copy


def add_resource(overlay: Path, name: str, text: str) -> None:
    (overlay / name).write_text(text)
    kustomization = overlay / "kustomization.yaml"
    config = yaml.safe_load(kustomization.read_text())
    config["resources"].append(name)
    kustomization.write_text(yaml.safe_dump(config, sort_keys=False))


GOOD_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: extra}
spec:
  REPLICAS
  selector: {matchLabels: {app: extra}}
  template:
    metadata: {labels: {app: extra}}
    spec:
      serviceAccountName: tgmed-workload
      securityContext:
        {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: extra
          image: tgmed-api:local
          imagePullPolicy: Never
          resources: RESOURCES
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"""
RESOURCES = "{requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}"


def test_a_well_formed_extra_deployment_passes(k8s_copy):
    """The control for the broken cases below: the same Deployment, correct, passes."""
    overlay = k8s_copy / "overlays" / "local"
    text = GOOD_DEPLOYMENT.replace("REPLICAS", "replicas: 1").replace("RESOURCES", RESOURCES)
    add_resource(overlay, "extra.yaml", text)
    assert validate.check(overlay) == []


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        # a misspelt field: the strict schema refuses it, for every version
        (
            GOOD_DEPLOYMENT.replace("REPLICAS", "replica: 1").replace("RESOURCES", RESOURCES),
            "Deployment/extra: k8s 1.25: spec: Additional properties are not allowed",
        ),
        # a wrong type
        (
            GOOD_DEPLOYMENT.replace("REPLICAS", "replicas: two").replace("RESOURCES", RESOURCES),
            "Deployment/extra: k8s 1.33: spec/replicas: 'two' is not of type 'integer'",
        ),
        # a kind no Kubernetes has: an error, not a warning
        (
            "apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: extra}\nspec: {}\n",
            "Deploymnt/extra: k8s 1.25: unknown kind or apiVersion apps/v1 Deploymnt",
        ),
        # the schema allows it, the platform's rules do not: no limits
        (
            GOOD_DEPLOYMENT.replace("REPLICAS", "replicas: 1").replace(
                "RESOURCES", "{requests: {cpu: 10m, memory: 16Mi}}"
            ),
            "Deployment/extra container extra: no limits for cpu, memory",
        ),
        # a kind the local 1.20 cluster does not serve
        (
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: extra}\n"
            "spec: {minAvailable: 1, selector: {matchLabels: {app: extra}}}\n",
            "PodDisruptionBudget/extra: policy/v1 is not served by Kubernetes 1.20",
        ),
    ],
    ids=["unknown-field", "wrong-type", "unknown-kind", "no-limits", "not-in-1.20"],
)
def test_a_broken_manifest_fails_the_check(k8s_copy, broken, expected):
    overlay = k8s_copy / "overlays" / "local"
    add_resource(overlay, "extra.yaml", broken)
    problems = validate.check(overlay)
    assert any(expected in problem for problem in problems), problems
    assert validate.main([str(overlay.relative_to(k8s_copy / "overlays"))]) in {0, 1}


def test_a_kustomize_error_fails_the_check(k8s_copy):
    overlay = k8s_copy / "overlays" / "production"
    add_resource(overlay, "missing.yaml", "")
    (overlay / "missing.yaml").unlink()
    problems = validate.check(overlay)
    assert len(problems) == 1
    assert "production: kustomize failed" in problems[0]


def test_root_and_latest_are_refused(k8s_copy):
    overlay = k8s_copy / "overlays" / "local"
    deployment = overlay.parents[1] / "base" / "api.yaml"
    text = deployment.read_text()
    text = text.replace("runAsNonRoot: true\n        runAsUser: 10001", "runAsUser: 0")
    deployment.write_text(text)
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("{name: tgmed-api, newTag: local}", "{name: tgmed-api}")
    )
    problems = validate.check(overlay)
    assert (
        "local: Deployment/tgmed-api: the pod must set runAsNonRoot and a non-zero runAsUser"
        in (problems)
    )
    assert "local: Deployment/tgmed-api: image tgmed-api:0.1.0 needs a tag, not latest" not in (
        problems
    )
    deployment.write_text(deployment.read_text().replace("tgmed-api:0.1.0", "tgmed-api:latest"))
    problems = validate.check(overlay)
    assert "local: Deployment/tgmed-api: image tgmed-api:latest needs a tag, not latest" in problems


def rendered(overlay: str) -> list[dict]:
    return validate.render(K8S / "overlays" / overlay)


def test_the_stage_account_has_no_access_and_the_launcher_only_its_namespace():
    for overlay in ("local", "production"):
        objects = rendered(overlay)
        role = validate.find(objects, "Role", "tgmed-run-launcher")
        assert role["metadata"]["namespace"] == "tgmed"
        verbs = {(r["apiGroups"][0], r["resources"][0]): set(r["verbs"]) for r in role["rules"]}
        assert verbs == {
            ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
            ("batch", "jobs/status"): {"get"},
            ("", "pods"): {"create", "get", "list", "watch", "delete"},
            ("", "pods/log"): {"get"},
            ("", "podtemplates"): {"get"},  # the stage pods' template, read at each launch
        }
        bindings = [o for o in objects if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
        assert [s["name"] for b in bindings for s in b["subjects"]] == ["tgmed-run-launcher"]
        for name in ("tgmed-stage", "tgmed-workload"):
            account = validate.find(objects, "ServiceAccount", name)
            assert account["automountServiceAccountToken"] is False


def test_each_workload_gets_only_its_secrets():
    objects = rendered("production")
    wanted = {}
    for obj, pod in validate.pod_specs(objects):
        names = set()
        for container in pod["containers"]:
            names |= {
                s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s
            }
            names |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
        wanted[obj["metadata"]["name"]] = names
    assert wanted == {
        "tgmed-api": {"tgmed-api"},
        "tgmed-code-location": {"tgmed-dagster-pg", "tgmed-alerts"},
        "tgmed-dagster-webserver": {"tgmed-dagster-pg"},
        "tgmed-dagster-daemon": {"tgmed-dagster-pg"},
        "tgmed-dagster-migrate-1-13-27": {"tgmed-dagster-pg"},
        "postgres": {"tgmed-postgres"},
        "tgmed-postgres-backup": {"tgmed-postgres"},
        # the stage pods' template: each stage's own Secret is added per invocation
        "tgmed-stage": set(),
    }


def test_the_stage_pod_template_is_the_stage_pods_base():
    """k8s/base's PodTemplate holds what every stage pod shares; an overlay may patch it
    (the rendered one is what tests/k8s/test_stage_jobs.py builds pods from)."""
    for overlay in ("local", "production"):
        template = validate.find(rendered(overlay), "PodTemplate", "tgmed-stage")
        assert template is not None and template["metadata"]["namespace"] == "tgmed"
        pod = template["template"]["spec"]
        assert pod["serviceAccountName"] == "tgmed-stage"
        assert pod["automountServiceAccountToken"] is False
        assert pod["restartPolicy"] == "Never"
        [container] = pod["containers"]
        # the image is the stage's own, set at each launch
        assert container["name"] == "stage"
        assert container["image"] == "tgmed-stage-image-set-per-launch"
        assert {v["name"] for v in pod["volumes"]} == {"lake", "tmp"}
    # the validator checks it as it checks every pod: a writable root is refused
    broken = [dict(template, template={"spec": {**pod, "containers": [{"name": "stage"}]}})]
    problems = validate.pod_problems(broken)
    assert "PodTemplate/tgmed-stage container stage: the root filesystem must be read-only" in (
        problems
    )


def test_policy_v1_and_cronjob_only_in_production():
    kinds = {o["apiVersion"] + " " + o["kind"] for o in rendered("production")}
    assert {"policy/v1 PodDisruptionBudget", "batch/v1 CronJob"} <= kinds
    kinds = {o["apiVersion"] + " " + o["kind"] for o in rendered("local")}
    assert not {k for k in kinds if k.startswith("policy/") or k.endswith("CronJob")}


def test_network_policies_cover_every_workload():
    """Each pod that talks is selected by a policy allowing exactly that (validated here;
    enforced only by a network plugin that implements NetworkPolicy)."""
    objects = rendered("production")
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    postgres_from = policies["postgres-ingress"]["spec"]["ingress"][0]["from"]
    allowed = {
        v
        for rule in postgres_from
        for e in rule["podSelector"]["matchExpressions"]
        for v in e["values"]
    }
    assert allowed == {
        "api",
        "code-location",
        "dagster-webserver",
        "dagster-daemon",
        "dagster-migrate",
        "run_worker",
        "load",
        "transform",
        "backup",
    }
    assert "scrape" not in allowed and "detect" not in allowed
    scrape = policies["scrape-telegram"]["spec"]["egress"][0]
    assert {"149.154.160.0/20", "91.108.4.0/22"} <= {b["ipBlock"]["cidr"] for b in scrape["to"]}
    selected_components = {
        p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        for p in policies.values()
    }
    assert "detect" not in selected_components  # detect reaches nothing but DNS


def overlay_root(tmp_path: Path, overlay: str) -> Path:
    """An empty k8s/ tree holding one overlay, for the secrets tool to write into."""
    root = tmp_path / "k8s"
    (root / "overlays" / overlay).mkdir(parents=True)
    # the Secrets an overlay asks for beyond the common ones, as the real overlays do
    login = {"production": "ui-login"}.get(overlay)
    wanted = f"secretGenerator:\n  - {{name: tgmed-{login}, envs: [secrets/{login}.env]}}\n"
    (root / "overlays" / overlay / "kustomization.yaml").write_text(
        wanted if login else "resources: []\n"
    )
    return root


def test_secrets_tool_writes_one_file_per_secret(tmp_path, capsys):
    root = overlay_root(tmp_path, "local")
    env = tmp_path / ".env"
    env.write_text(
        "# comment\nPOSTGRES_PASSWORD=pg-super\nWAREHOUSE_DB_PASSWORD=w@re/house\n"
        "DAGSTER_DB_PASSWORD='dag pass'\nAPI_DB_PASSWORD=api-pass\nTELEGRAM_API_ID=12\n"
        "export TELEGRAM_API_HASH=abc\nALERT_WEBHOOK_URL=http://hook/x\n"
    )
    assert secrets_tool.main(["local", "--env-file", str(env), "--root", str(root)]) == 0
    folder = root / "overlays" / "local" / "secrets"
    files = {p.name: p.read_text() for p in folder.iterdir()}
    assert files == {
        "postgres.env": "POSTGRES_PASSWORD=pg-super\nWAREHOUSE_DB_PASSWORD=w@re/house\n"
        "DAGSTER_DB_PASSWORD=dag pass\nAPI_DB_PASSWORD=api-pass\n",
        "dagster-pg.env": "postgresql-password=dag pass\n",
        "database.env": "DATABASE_URL=postgresql://tgmed:w%40re%2Fhouse@postgres:5432/tgmed\n",
        "api.env": "API_DATABASE_URL=postgresql://tgmed_api:api-pass@postgres:5432/tgmed\n",
        "telegram.env": "TELEGRAM_API_ID=12\nTELEGRAM_API_HASH=abc\nTELEGRAM_SESSION=\n",
        "alerts.env": "ALERT_WEBHOOK_URL=http://hook/x\nALERT_TELEGRAM_BOT_TOKEN=\n"
        "ALERT_TELEGRAM_CHAT_ID=\n",
    }
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    captured = capsys.readouterr()
    assert "pg-super" not in captured.out + captured.err


def test_secrets_tool_names_what_is_missing(tmp_path):
    root = overlay_root(tmp_path, "production")
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nDATABASE_URL=postgresql://u:p@db.example/tgmed\n")
    with pytest.raises(
        SystemExit, match="API_DB_PASSWORD, DAGSTER_DB_PASSWORD, WAREHOUSE_DB_PASSWORD"
    ):
        secrets_tool.main(["production", "--env-file", str(env), "--root", str(root)])
    assert not (root / "overlays" / "production" / "secrets").exists()
    # an external server: the URLs and Dagster's password are enough
    env.write_text(
        "DATABASE_URL=postgresql://u:p@db.example/tgmed\n"
        "API_DATABASE_URL=postgresql://a:q@db.example/tgmed\nDAGSTER_DB_PASSWORD=d\n"
    )
    argv = ["production", "--env-file", str(env), "--root", str(root), "--external-postgres"]
    with pytest.raises(SystemExit, match="PROXY_USER, PROXY_PASSWORD"):
        secrets_tool.main(argv)  # production's Ingress puts the UI behind this login
    env.write_text(env.read_text() + "PROXY_USER=ops\nPROXY_PASSWORD=ui pass phrase\n")
    assert secrets_tool.main(argv) == 0
    folder = root / "overlays" / "production" / "secrets"
    assert (folder / "postgres.env").read_text() == ""
    assert (
        folder / "database.env"
    ).read_text() == "DATABASE_URL=postgresql://u:p@db.example/tgmed\n"


def test_a_local_proxy_gets_the_ui_login_as_given(tmp_path):
    root = overlay_root(tmp_path, "local")
    (root / "overlays" / "local" / "kustomization.yaml").write_text(
        "secretGenerator:\n  - {name: tgmed-proxy, envs: [secrets/proxy.env]}\n"
    )
    env = tmp_path / ".env"
    env.write_text(
        "POSTGRES_PASSWORD=a\nWAREHOUSE_DB_PASSWORD=b\nDAGSTER_DB_PASSWORD=c\nAPI_DB_PASSWORD=d\n"
    )
    argv = ["local", "--env-file", str(env), "--root", str(root)]
    with pytest.raises(SystemExit, match="PROXY_USER, PROXY_PASSWORD"):
        secrets_tool.main(argv)
    env.write_text(env.read_text() + "PROXY_USER=ops\nPROXY_PASSWORD=ui pass\n")
    assert secrets_tool.main(argv) == 0
    proxy = root / "overlays" / "local" / "secrets" / "proxy.env"
    assert proxy.read_text() == "PROXY_USER=ops\nPROXY_PASSWORD=ui pass\n"
    assert stat.S_IMODE(proxy.stat().st_mode) == 0o600


def test_the_local_ui_and_api_admit_only_the_proxy(k8s_copy):
    objects = validate.render(k8s_copy / "overlays" / "local")
    for name in ("dagster-webserver", "api"):
        policy = validate.find(objects, "NetworkPolicy", name)
        assert policy["spec"]["ingress"][0]["from"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "proxy"}}}
        ]
    proxy = validate.find(objects, "Deployment", "tgmed-proxy")
    container = proxy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tgmed-proxy:local"
    assert container["envFrom"] == [{"secretRef": {"name": "tgmed-proxy"}}]
    upstreams = {e["name"]: e["value"] for e in container["env"]}
    assert upstreams["PROXY_UI_UPSTREAM"].startswith("tgmed-dagster-webserver.tgmed.svc.")


def test_run_workers_get_only_the_warehouse_url(k8s_copy):
    """Run workers read the warehouse (the newest-post check, pipeline_health): the run
    launcher gives them tgmed-database and no other Secret."""
    path = k8s_copy / "base" / "config" / "dagster.yaml"
    text = path.read_text()
    assert "    env_secrets:\n      - tgmed-database\n" in text
    assert not validate.check(k8s_copy / "overlays" / "local")
    path.write_text(
        text.replace("      - tgmed-database\n", "      - tgmed-database\n      - tgmed-telegram\n")
    )
    problems = validate.check(k8s_copy / "overlays" / "local")
    assert any("only ['tgmed-database'] may (['tgmed-telegram'])" in p for p in problems), problems


def test_production_login_secret_holds_a_hash_never_the_password(tmp_path):
    import warnings

    root = overlay_root(tmp_path, "production")
    env = tmp_path / ".env"
    env.write_text(
        "DATABASE_URL=postgresql://u:p@db.example/tgmed\n"
        "API_DATABASE_URL=postgresql://a:q@db.example/tgmed\nDAGSTER_DB_PASSWORD=d\n"
        "PROXY_USER=ops\nPROXY_PASSWORD=ui pass phrase\n"
    )
    argv = ["production", "--env-file", str(env), "--root", str(root), "--external-postgres"]
    assert secrets_tool.main(argv) == 0
    line = (root / "overlays" / "production" / "secrets" / "ui-login.env").read_text()
    assert line.startswith("auth=ops:$6$") and "ui pass phrase" not in line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the C library's crypt(3), as nginx checks the login

    stored = line.strip().split(":", 1)[1]
    assert crypt.crypt("ui pass phrase", stored) == stored
    assert crypt.crypt("wrong", stored) != stored


def test_production_serves_the_ui_and_the_api_through_tls_ingresses_only(k8s_copy):
    objects = rendered("production")
    ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
    assert set(ingresses) == {"tgmed-ui", "tgmed-api"}
    ui = ingresses["tgmed-ui"]
    assert ui["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-secret"] == (
        "tgmed-ui-login"
    )
    assert validate.find(objects, "Secret", "tgmed-ui-login") is not None
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    for name in ("api", "dagster-webserver"):
        [rule] = policies[name]["spec"]["ingress"]
        [source] = rule["from"]
        assert source["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
    assert not [o for o in rendered("local") if o["kind"] == "Ingress"]
    # the rules catch a UI without its login, and pods open to every pod
    overlay = k8s_copy / "overlays" / "production"
    text = (overlay / "ingress.yaml").read_text()
    (overlay / "ingress.yaml").write_text(
        text.replace("    nginx.ingress.kubernetes.io/auth-type: basic\n", "")
    )
    kustomization = (overlay / "kustomization.yaml").read_text()
    (overlay / "kustomization.yaml").write_text(
        kustomization.replace('name: "api|dagster-webserver"', 'name: "api"')
    )
    problems = validate.check(overlay)
    assert "production: Ingress/tgmed-ui: the Dagster UI must be behind the login" in problems
    assert (
        "production: NetworkPolicy dagster-webserver: must admit the ingress controller only"
        in problems
    )


def test_the_webserver_and_daemon_wait_for_the_migrate_job_of_the_locked_dagster():
    """`dagster instance migrate` runs as a Job named for the Dagster version (a Job's
    template cannot change: an upgrade is a new Job), and the webserver and the daemon
    start only after it succeeded (their init container waits on that very name)."""
    import re

    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    version = re.search(r'name = "dagster"\nversion = "([^"]+)"', lock)[1]
    for overlay in ("local", "production"):
        objects = rendered(overlay)
        [job] = [o for o in objects if o["kind"] == "Job"]
        assert job["metadata"]["name"] == f"tgmed-dagster-migrate-{version.replace('.', '-')}"
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["dagster", "instance", "migrate"]
        services = {
            o["metadata"]["name"]: o["spec"]["template"]["spec"]
            for o in objects
            if o["kind"] == "Deployment" and "dagster-" in o["metadata"]["name"]
        }
        for name in ("tgmed-dagster-webserver", "tgmed-dagster-daemon"):
            [wait] = services[name]["initContainers"]
            assert wait["command"][-1] == job["metadata"]["name"], name
            assert wait["image"] == container["image"], name
        assert "initContainers" not in services.get("tgmed-code-location", {})
