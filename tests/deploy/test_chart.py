"""The Helm chart, rendered by a real helm for several values files, linted, validated against
the Kubernetes 1.29 and 1.32 schemas, and checked for the settings a platform team relies on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.observability.metrics import Metrics
from tests.support import cached_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "merch-pipeline"
VALUES = Path(__file__).parent / "values"
COMBINATIONS = {
    "defaults": [],
    "split-roles": [VALUES / "split-roles.yaml"],
    "everything": [VALUES / "everything.yaml"],
    "existing-secret": [VALUES / "existing-secret.yaml"],
}
CORE_KINDS = {
    "ConfigMap",
    "PersistentVolumeClaim",
    "Secret",
    "Service",
    "Deployment",
    "Job",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "Ingress",
    "ServiceAccount",
}
SECRETS = [
    "secret-db-password",
    "secret-amqp-password",
    "secret-fourthwall-token",
    "secret-luigisbox-key",
    "secret-admin-token",
    "secret-fourthwall-password",
    "secret-shop-token",
    "secret-app-client-secret",
    "secret-app-webhook-key",
]


@pytest.fixture(scope="module")
def helm() -> str:
    return cached_tool("ensure-helm.sh", "helm")


def render(helm: str, files: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    args = [helm, "template", "merch", str(CHART), "--namespace", "shop-ops"]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=60)


def manifests(helm: str, files: list[Path]) -> list[dict[str, Any]]:
    result = render(helm, files)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("name", COMBINATIONS)
def test_lint_strict(helm: str, name: str) -> None:
    args = [helm, "lint", "--strict", str(CHART)]
    for f in COMBINATIONS[name]:
        args += ["-f", str(f)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("k8s", ["1.29.0", "1.32.0"])
@pytest.mark.parametrize("name", COMBINATIONS)
def test_manifests_validate_against_kubernetes(
    helm: str, name: str, k8s: str, tmp_path: Path
) -> None:
    docs = manifests(helm, COMBINATIONS[name])
    validator = shutil.which("kubernetes-validate") or "kubernetes-validate"
    paths = []
    for n, doc in enumerate(docs):
        if doc["kind"] in CORE_KINDS:
            path = tmp_path / f"{n}-{doc['kind']}.yaml"
            path.write_text(yaml.safe_dump(doc))
            paths.append(str(path))
    result = subprocess.run(
        [validator, "--strict", "-k", k8s, "--quiet", *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {d["kind"] for d in docs} - CORE_KINDS <= {
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
        "PrometheusRule",
    }


def deployments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "Deployment"]


@pytest.mark.parametrize("name", COMBINATIONS)
def test_pods_are_hardened_and_probed(helm: str, name: str) -> None:
    docs = manifests(helm, COMBINATIONS[name])
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    for deployment in deployments(docs):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
        assert pod["terminationGracePeriodSeconds"] > float(config["SHUTDOWN_GRACE_S"])


@pytest.mark.parametrize("name", COMBINATIONS)
def test_no_combination_can_switch_failpoints_on(helm: str, name: str) -> None:
    """Failpoints are a crash-test tool: no value of the chart renders either setting."""
    text = yaml.safe_dump_all(manifests(helm, COMBINATIONS[name]))
    assert "FAILPOINTS" not in text and "MERCH_PIPELINE_TEST_MODE" not in text


@pytest.mark.parametrize("name", COMBINATIONS)
def test_no_secret_lands_in_a_configmap(helm: str, name: str) -> None:
    for doc in manifests(helm, COMBINATIONS[name]):
        if doc["kind"] == "ConfigMap":
            text = yaml.safe_dump(doc)
            assert not [s for s in SECRETS if s in text]
            assert "AMQP_URL" not in doc["data"] and "DATABASE_URL" not in doc["data"]


def test_default_is_one_role_running_everything(helm: str) -> None:
    docs = manifests(helm, [])
    (deployment,) = deployments(docs)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run",
        "--consumers",
        "design-approved,product-created,design-withdrawn,fourthwall-changes",
    ]
    assert not [d for d in docs if d["kind"] == "Job"]  # SQLite: each pod migrates at start


def test_split_roles_get_their_own_deployments_and_a_migration_hook(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["split-roles"])
    by_name = {d["metadata"]["name"]: d for d in deployments(docs)}
    assert set(by_name) == {
        "merch-merch-pipeline-design-approved",
        "merch-merch-pipeline-product-created",
    }
    assert by_name["merch-merch-pipeline-design-approved"]["spec"]["replicas"] == 3
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    hook_secret = [
        d
        for d in docs
        if d["kind"] == "Secret" and d["metadata"].get("annotations", {}).get("helm.sh/hook")
    ]
    assert hook_secret and int(
        hook_secret[0]["metadata"]["annotations"]["helm.sh/hook-weight"]
    ) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["MIGRATE_ON_START"] == "false"


def test_everything_enabled_renders_each_optional_resource(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    kinds = [d["kind"] for d in docs]
    assert kinds.count("PodDisruptionBudget") == 2
    assert kinds.count("ScaledObject") == 2
    assert "ServiceMonitor" in kinds and "NetworkPolicy" in kinds
    scaled = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ScaledObject"}
    spec = scaled["merch-merch-pipeline-design-approved"]
    assert spec["maxReplicaCount"] == 6
    assert [t["metadata"].get("queueName") for t in spec["triggers"]] == [
        "merch-pipeline.design-approved",
        None,  # the parked designs' trigger (test_keda_counts_parked_designs_…)
    ]
    assert spec["triggers"][0]["authenticationRef"]["name"] == "merch-merch-pipeline-rabbitmq"
    assert all("replicas" not in d["spec"] for d in deployments(docs))  # KEDA owns replicas
    pod = deployments(docs)[0]["spec"]["template"]["spec"]
    assert {"name": "CONFIG_FILE", "value": "/etc/merch-pipeline/shops.toml"} in pod["containers"][
        0
    ]["env"]


def test_alerts_use_metrics_the_service_exports(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "MerchPipelineDesignsFailing",
        "MerchPipelineNeedsReconciliation",
        "MerchPipelineDeadLettersGrowing",
        "MerchPipelineFourthwallThrottled",
        "MerchPipelineFourthwallWebhooksRefused",
        "MerchPipelineFourthwallAppShopPaused",
        "MerchPipelineLedgerDown",
        "MerchPipelineParkedNotReleased",
        "MerchPipelineBrokerLost",
        "MerchPipelineHttpErrors",
    }
    sections = _runbook_sections()
    for name, rule_ in alerts.items():  # each points at its section of docs/runbook.md
        url, _, anchor = rule_["annotations"]["runbook_url"].partition("#")
        assert url == "docs/runbook.md" and anchor == name.lower() in sections, name
    exported = _exported_series()
    (service,) = [d for d in docs if d["kind"] == "Service"]
    for name, rule_ in alerts.items():
        assert set(rule_) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule_["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule_["annotations"]["summary"] and rule_["annotations"]["description"]
        used = set(re.findall(r"\b(merch_\w+)\{", rule_["expr"]))
        assert used and used <= exported, (name, used - exported)
        assert f'job="{service["metadata"]["name"]}"' in rule_["expr"], name


def _runbook_sections() -> set[str]:
    """The anchors GitHub gives docs/runbook.md's headings."""
    text = (ROOT / "docs" / "runbook.md").read_text()
    headings = re.findall(r"^#{2,3} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_a_runbook_url_names_the_configured_runbook(helm: str) -> None:
    result = render(
        helm,
        COMBINATIONS["everything"],
        "--set",
        "prometheusRule.runbookUrl=https://git.example.com/shop/merch/blob/main/docs/runbook.md",
    )
    assert result.returncode == 0, result.stderr
    (rule,) = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "PrometheusRule"]
    urls = [r["annotations"]["runbook_url"] for r in rule["spec"]["groups"][0]["rules"]]
    assert urls and all(
        u.startswith("https://git.example.com/shop/merch/blob/main/docs/runbook.md#") for u in urls
    )


GRAFANA_SCHEMA_VERSION = 39  # Grafana 11's classic dashboard model
PANEL_TYPES = {"row", "timeseries", "bargauge", "stat", "table"}


def _exported_series() -> set[str]:
    """Every series name the service exports (counters as _total, histograms' parts)."""
    names = set(re.findall(r"^# TYPE (merch_\w+)", Metrics().render().decode(), re.M))
    parts = ("_total", "_bucket", "_sum", "_count")
    return names | {name + part for name in names for part in parts}


def test_the_dashboard_is_a_grafana_model_whose_queries_name_exported_metrics(
    helm: str,
) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    (config,) = [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]
    assert (
        config["kind"] == "ConfigMap" and config["metadata"]["labels"]["grafana_dashboard"] == "1"
    )
    assert config["metadata"]["annotations"] == {"grafana_folder": "Shop"}
    dashboard = json.loads(config["data"]["merch-pipeline.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "merch-pipeline.json").read_text())
    assert dashboard["schemaVersion"] == GRAFANA_SCHEMA_VERSION
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)  # ids unique
    cells: set[tuple[int, int]] = set()
    exported = _exported_series()
    used: set[str] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES and panel["title"], panel
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] > 0 and box["x"] + box["w"] <= 24, panel["title"]
        columns = range(box["x"], box["x"] + box["w"])
        covered = {(x, y) for x in columns for y in range(box["y"], box["y"] + box["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b(merch_\w+)", target["expr"]))
            assert names and names <= exported, (panel["title"], names - exported)
            assert 'job=~"$job"' in target["expr"], panel["title"]
            used |= names
    # the issue's panels: throughput and outcomes, latency, upstreams, 429s, the shops waiting
    # longest, deferred and parked, dead letters, ledger, broker
    for needed in (
        "merch_messages_total",
        "merch_handler_seconds_bucket",
        "merch_upstream_calls_total",
        "merch_upstream_seconds_bucket",
        "merch_upstream_throttled_total",
        "merch_quota_shop_wait_ahead_seconds",
        "merch_deferrals_total",
        "merch_parked_designs",
        "merch_dead_letter_messages",
        "merch_ledger_designs",
        "merch_ledger_up",
        "merch_broker_connected",
        "merch_http_requests_total",
        "merch_http_request_seconds_bucket",
        "merch_pipeline_build_info",
    ):
        assert needed in used, needed


def test_the_dashboard_is_off_by_default(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["defaults"])
    assert not [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]


def test_a_sqlite_ledger_lives_on_a_claimed_volume(helm: str) -> None:
    docs = manifests(helm, [])
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    (deployment,) = deployments(docs)
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["ledger"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mounts = spec["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "ledger", "mountPath": "/var/lib/merch-pipeline"} in mounts


def test_keda_counts_parked_designs_for_the_design_approved_role(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    parked = [
        (d["metadata"]["name"], t)
        for d in scaled
        for t in d["spec"]["triggers"]
        if t["type"] == "postgresql"
    ]
    assert parked, "no trigger counts the parked designs"
    for _, trigger in parked:
        assert trigger["metadata"]["connectionFromEnv"] == "DATABASE_URL"
        assert "FROM parked_messages" in trigger["metadata"]["query"]
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]  # PostgreSQL: none


def test_existing_secret_is_used_and_not_created(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["existing-secret"])
    assert not [d for d in docs if d["kind"] == "Secret"]
    (deployment,) = deployments(docs)
    refs = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "merch-pipeline-credentials"}} in refs
    (job,) = [d for d in docs if d["kind"] == "Job"]
    env = job["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert env["valueFrom"]["secretKeyRef"]["name"] == "merch-pipeline-credentials"
    assert [d["kind"] for d in docs].count("HorizontalPodAutoscaler") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "defaultRole.replicas=2"], "SQLite is a file inside one pod"),
        (["--set", "keda.enabled=true"], "cannot be shared between pods"),
        (["--set", "prometheusRule.enabled=true"], "needs serviceMonitor.enabled"),
        (["--set", "bogus=1"], "Additional property bogus is not allowed"),
        (["--set", "config.prefetch=lots"], "config.prefetch: Invalid type"),
        (
            ["--set", "extraEnvVars[0].name=FAILPOINTS", "--set", "extraEnvVars[0].value=x"],
            "extraEnvVars may not set FAILPOINTS",
        ),
        (["--set", "ingress.hosts[0].paths[0].path=admin"], "ingress.hosts.0.paths.0.path"),
        (
            ["--set", "topologySpreadConstraints[0].maxSkew=1"],
            "topologySpreadConstraints.0",
        ),
        (["--set", "service.port=70000"], "service.port"),
        (["--set", "secrets.databaseUrl=mysql://x"], "secrets.databaseUrl"),
        # parked designs live in the ledger: a SQLite file on an emptyDir would lose them
        (["--set", "secrets.databaseUrl=sqlite:////tmp/l.sqlite3"], "is lost with the pod"),
        (["--set", "persistence.enabled=false"], "is lost with the pod"),
        # a consumer no role runs: its queue would fill with nobody acting on it
        (
            ["--set", "defaultRole.consumers={design-approved,product-created,fourthwall-changes}"],
            "no role runs the design-withdrawn consumer",
        ),
    ],
)
def test_bad_values_fail_at_render_time_with_a_reason(
    helm: str, args: list[str], message: str
) -> None:
    result = render(helm, [], *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_notes_tell_where_the_api_and_dead_letters_are(helm: str, tmp_path: Path) -> None:
    # helm renders NOTES.txt only on install, which needs a cluster: render the same text as
    # the body of a probe ConfigMap in a copy of the chart instead.
    chart = tmp_path / "merch-pipeline"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    body = "\n".join("    " + line for line in notes.splitlines())
    (chart / "templates" / "zz-notes-probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-probe\ndata:\n"
        f"  notes: |\n{body}\n"
    )
    result = subprocess.run(
        [
            helm,
            "template",
            "merch",
            str(chart),
            "--namespace",
            "shop-ops",
            "--show-only",
            "templates/zz-notes-probe.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "port-forward svc/merch-merch-pipeline 8080:8080" in rendered
    assert "merch-pipeline.design-approved.dead-letter" in rendered
    assert "admin routes are off" in rendered
    assert "SQLite" in rendered  # the default database is called out


def test_tracing_is_off_until_an_endpoint_is_set_and_then_may_reach_the_collector(
    helm: str,
) -> None:
    def rendered(*extra: str) -> tuple[dict[str, str], list[int]]:
        result = render(helm, [], "--set", "networkPolicy.enabled=true", *extra)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
        ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]]
        return config, ports

    config, ports = rendered()
    assert not [k for k in config if k.startswith("OTEL_")] and 4318 not in ports
    config, ports = rendered("--set", "tracing.endpoint=http://otel-collector:4318")
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert config["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert "OTEL_PROPAGATORS" not in config  # the SDK's default: tracecontext,baggage
    config, _ = rendered(
        "--set",
        "tracing.endpoint=http://otel-collector:4318",
        "--set",
        "tracing.propagators=baggage",
    )
    assert config["OTEL_PROPAGATORS"] == "baggage"
    assert 4318 in ports
    refused = render(helm, [], "--set", "tracing.endpoint=otel-collector:4318")
    assert refused.returncode != 0 and "tracing.endpoint" in refused.stderr


def test_artwork_hosts_reach_the_service_and_are_checked_at_render_time(helm: str) -> None:
    def config(*extra: str) -> dict[str, str]:
        result = render(helm, [], *extra)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        data: dict[str, str] = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
        return data

    assert "ARTWORK_HOSTS" not in config()  # off: artwork URLs are refused
    hosts = "cdn.example.com,*.assets.example.org"
    on = config("--set-string", f"config.artwork.hosts={hosts.replace(',', chr(92) + ',')}")
    assert (on["ARTWORK_HOSTS"], on["ARTWORK_MAX_BYTES"]) == (hosts, "52428800")
    refused = render(helm, [], "--set-string", "config.artwork.hosts=https://cdn.example.com/")
    assert refused.returncode != 0 and "artwork" in refused.stderr


def test_the_ingress_routes_the_admin_api_and_the_webhooks_only(helm: str) -> None:
    assert not [d for d in manifests(helm, []) if d["kind"] == "Ingress"]  # off by default
    docs = manifests(helm, COMBINATIONS["everything"])
    (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "merch-tls", "hosts": ["merch.shop.example"]}]
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": "1m"
    }
    (rule,) = spec["rules"]
    assert rule["host"] == "merch.shop.example"
    paths = rule["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [
        ("/admin", "Prefix"),
        ("/webhooks", "Prefix"),
    ]
    for path in paths:
        assert path["backend"]["service"] == {
            "name": service["metadata"]["name"],
            "port": {"name": "http"},
        }


def test_pods_run_as_the_charts_service_account_without_its_token(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    assert set(accounts) == {"merch-merch-pipeline", "merch-merch-pipeline-migrate"}
    for account in accounts.values():
        assert account["automountServiceAccountToken"] is False
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
            "role/merch"
        )
    # the migration hook runs before the release's own account exists: it has its own copy
    hook = accounts["merch-merch-pipeline-migrate"]["metadata"]["annotations"]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    job_weight = job["metadata"]["annotations"]["helm.sh/hook-weight"]
    assert int(hook["helm.sh/hook-weight"]) < int(job_weight)
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "merch-merch-pipeline-migrate"
    for deployment in deployments(docs):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "merch-merch-pipeline"
        assert pod["automountServiceAccountToken"] is False
    existing = render(
        helm, [], "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=shop-sa"
    )
    assert existing.returncode == 0, existing.stderr
    docs = [d for d in yaml.safe_load_all(existing.stdout) if d]
    assert not [d for d in docs if d["kind"] == "ServiceAccount"]
    (deployment,) = deployments(docs)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "shop-sa"


def test_extra_env_reaches_every_container(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    extra = [
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "deployment.environment=prod"},
        {
            "name": "OTEL_EXPORTER_OTLP_HEADERS",
            "valueFrom": {"secretKeyRef": {"name": "otel-collector", "key": "headers"}},
        },
    ]
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 3
    for pod in pods:
        (container,) = pod["containers"]
        assert container["env"][-2:] == extra  # after the chart's own
        assert container["envFrom"][-1] == {"secretRef": {"name": "merch-extra-env"}}
    (deployment,) = deployments(manifests(helm, []))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in container and len(container["envFrom"]) == 2  # nothing by default


def test_topology_spread_constraints_select_each_roles_pods(helm: str) -> None:
    docs = manifests(helm, COMBINATIONS["everything"])
    for deployment in deployments(docs):
        pod = deployment["spec"]["template"]["spec"]
        zone, host = pod["topologySpreadConstraints"]
        assert zone["topologyKey"] == "topology.kubernetes.io/zone"
        assert zone["labelSelector"] == {
            "matchLabels": deployment["spec"]["selector"]["matchLabels"]
        }  # the role's own pods
        assert host["labelSelector"] == {"matchLabels": {"team": "shop"}}  # given: kept as is
    (deployment,) = deployments(manifests(helm, []))
    assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]


def test_the_chart_and_the_image_carry_the_package_version(helm: str) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    (deployment,) = deployments(manifests(helm, []))
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"merch-pipeline:{version}"
    printed = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh")],
        env={**os.environ, "MERCH_PIPELINE_BUILD_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert f"VERSION={version}" in printed and any(a.startswith("REVISION=") for a in printed)


def test_the_fourthwall_apps_credentials_reach_the_secret_and_its_margin_the_config_map(
    helm: str,
) -> None:
    docs = manifests(helm, COMBINATIONS["split-roles"])
    (secret,) = [
        d
        for d in docs
        if d["kind"] == "Secret" and "helm.sh/hook" not in d["metadata"].get("annotations", {})
    ]
    assert {
        key: secret["stringData"][key]
        for key in (
            "FOURTHWALL_APP_CLIENT_ID",
            "FOURTHWALL_APP_CLIENT_SECRET",
            "FOURTHWALL_APP_WEBHOOK_KEY",
        )
    } == {
        "FOURTHWALL_APP_CLIENT_ID": "app_12345",
        "FOURTHWALL_APP_CLIENT_SECRET": "secret-app-client-secret",
        "FOURTHWALL_APP_WEBHOOK_KEY": "secret-app-webhook-key",
    }
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and "FOURTHWALL_API_URL" in d["data"]]
    assert config["data"]["FOURTHWALL_APP_REFRESH_MARGIN_S"] == "60"
