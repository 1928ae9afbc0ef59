"""deploy/kubernetes: manifests parsed and cross-checked; schema-checked with kubernetes-validate."""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from p2pcity.chain.genesis import Genesis
from p2pcity.config import NodeConfig
from p2pcity.net.config import split_p2p_addr
from tests.deploy.support import (
    API_PORT,
    BOOTSTRAP_PORT,
    EXAMPLES,
    HOME,
    KUBERNETES,
    P2P_PORT,
    bootstrap_cli,
    check_cli,
    load_yaml,
    net_config,
    option,
    shell_invocations,
)

DISTRICTS = ("registry", "bank", "court", "tax")
NAMESPACE = "p2pcity"
KUBERNETES_VERSION = "1.30.0"


@functools.cache
def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object in deploy/kubernetes, the Secret examples included."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out.extend((path, doc) for doc in load_yaml(path))
    return out


def _find(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in _manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"want one {kind}/{name}, found {len(found)}"
    return found[0]


def _workloads() -> list[dict[str, Any]]:
    return [doc for _, doc in _manifests() if doc["kind"] in ("StatefulSet", "Deployment")]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _main(workload: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_every_manifest_has_api_version_kind_name_and_namespace() -> None:
    seen = set()
    for path, doc in _manifests():
        for key in ("apiVersion", "kind", "metadata"):
            assert key in doc, f"{path.name}: no {key}"
        name = doc["metadata"].get("name")
        assert name, f"{path.name}: {doc['kind']} has no metadata.name"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{path.name}: {doc['kind']}/{name}"
        assert (doc["kind"], name) not in seen, f"{doc['kind']}/{name} defined twice"
        seen.add((doc["kind"], name))
    kinds = [kind for kind, _ in seen]
    assert kinds.count("StatefulSet") == len(DISTRICTS) and kinds.count("Deployment") == 1


def test_kustomization_applies_every_manifest_but_the_secret_examples() -> None:
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization" and kustomization["namespace"] == NAMESPACE
    resources = kustomization["resources"]
    expected = sorted(p.name for p in KUBERNETES.glob("*.yaml") if ".example." not in p.name)
    assert sorted([*resources, "kustomization.yaml"]) == expected
    images = {image["name"] for image in kustomization["images"]}
    for workload in _workloads():
        for container in _containers(workload):
            assert container["image"].partition(":")[0] in images, "kustomize can retarget every image"


def test_one_statefulset_per_district_with_one_replica_a_claim_and_a_headless_service() -> None:
    for district in DISTRICTS:
        sts = _find("StatefulSet", district)
        spec = sts["spec"]
        assert spec["replicas"] == 1, "two pods with one validator key would double-sign"
        assert spec["serviceName"] == district
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        claims = {claim["metadata"]["name"]: claim for claim in spec["volumeClaimTemplates"]}
        assert claims["home"]["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claims["home"]["spec"]["resources"]["requests"]["storage"]
        mounts = {m["mountPath"]: m["name"] for m in _main(sts)["volumeMounts"]}
        assert mounts[HOME] == "home", "the node home lives on the claim"
        service = _find("Service", district)
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        assert service["spec"]["selector"].items() <= labels.items()


def test_district_manifests_differ_only_in_the_name() -> None:
    reference = (KUBERNETES / "registry.yaml").read_text()
    for district in DISTRICTS:
        text = (KUBERNETES / f"{district}.yaml").read_text()
        assert text == reference.replace("registry", district), f"{district}.yaml drifted from registry.yaml"


def test_probes_and_service_ports_hit_the_container_ports() -> None:
    for workload in _workloads():
        name = workload["metadata"]["name"]
        container = _main(workload)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        probes = [container.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")]
        assert container["livenessProbe"] and container["readinessProbe"], name
        for probe in filter(None, probes):
            target = probe.get("httpGet") or probe["tcpSocket"]
            assert target["port"] in ports, f"{name}: probe on unknown port {target['port']}"
            if "httpGet" in probe:
                assert probe["httpGet"]["path"] == "/status" and ports[target["port"]] == API_PORT
        service = _find("Service", name)
        for port in service["spec"]["ports"]:
            assert ports[port["targetPort"]] == port["port"], f"{name}: service port {port['name']}"
        if workload["kind"] == "StatefulSet":
            assert ports == {"p2p": P2P_PORT, "api": API_PORT}
            annotations = workload["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(API_PORT)
            assert annotations["prometheus.io/path"] == "/metrics"
        else:
            assert ports == {"p2p": BOOTSTRAP_PORT}


def test_pods_are_non_root_read_only_and_bounded() -> None:
    for workload in _workloads():
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert pod["terminationGracePeriodSeconds"] >= 15, "time for a clean SIGTERM shutdown"
        for container in _containers(workload):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], where
            volumes = {v["name"] for v in pod["volumes"]}
            volumes |= {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
            for mount in container["volumeMounts"]:
                assert mount["name"] in volumes, f"{where} mounts undefined volume {mount['name']}"


def test_pods_use_their_own_secret_and_the_genesis_configmap() -> None:
    examples = {doc["metadata"]["name"] for _, doc in _manifests() if doc["kind"] == "Secret"}
    for workload in _workloads():
        name = workload["metadata"]["name"]
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        secret = volumes["secret"]["secret"]
        assert secret["secretName"] == f"p2pcity-{name}", "each district has its own keys"
        assert secret["defaultMode"] == 0o440
        assert volumes["genesis"]["configMap"]["name"] == "p2pcity-genesis"
        _find("ConfigMap", "p2pcity-genesis")
        if name in ("registry", "bootstrap"):
            assert secret["secretName"] in examples, "secrets.example.yaml shows this Secret"


def test_containers_run_real_commands() -> None:
    for district in DISTRICTS:
        sts = _find("StatefulSet", district)
        node = _main(sts)
        assert node["command"] == ["p2pcity"]
        assert check_cli(node["args"]).name == "start"
        assert option(node["args"], "--home") == HOME
        init = sts["spec"]["template"]["spec"]["initContainers"][0]
        script = init["command"][-1]
        for path in ("config.toml", "keys/identity.json", "keys/p2p.key", "genesis.json"):
            assert f'"$home/{path}"' in script, f"init container does not lay out {path}"
        assert [check_cli(argv).name for argv in shell_invocations(script)] == ["show"]
    bootstrap = _main(_find("Deployment", "bootstrap"))
    assert bootstrap["command"] == ["python", "-m", "bootstrap"]
    assert check_cli(bootstrap["args"], bootstrap_cli()).name == "start"
    assert option(bootstrap["args"], "--home") == HOME
    assert _find("Deployment", "bootstrap")["spec"]["strategy"]["type"] == "Recreate"


def test_genesis_configmap_is_the_example_genesis() -> None:
    data = _find("ConfigMap", "p2pcity-genesis")["data"]["genesis.json"]
    assert Genesis.from_json(json.loads(data)) == Genesis.load(EXAMPLES / "genesis.json")
    assert json.loads(data) == json.loads((EXAMPLES / "genesis.json").read_text())


def test_example_secret_config_loads_and_points_at_the_cluster(tmp_path: Path) -> None:
    secret = _find("Secret", "p2pcity-registry")
    assert set(secret["stringData"]) | set(secret["data"]) == {"config.toml", "identity.json", "p2p.key"}
    config = NodeConfig.from_dict(tomllib.loads(secret["stringData"]["config.toml"]), tmp_path)
    net_config(config, "riverside-city")
    assert config.district == "registry"
    assert config.api.listen == f"0.0.0.0:{API_PORT}", "probes reach the API on the pod IP"
    assert config.p2p.announce == (f"/dns4/registry-0.registry.{NAMESPACE}.svc.cluster.local/tcp/{P2P_PORT}",)
    genesis_peer, _ = split_p2p_addr(Genesis.load(EXAMPLES / "genesis.json").bootstrap[0])
    peer, addr = split_p2p_addr(config.p2p.bootstrap[0])
    assert peer == genesis_peer
    assert addr == f"/dns4/bootstrap.{NAMESPACE}.svc.cluster.local/tcp/{BOOTSTRAP_PORT}"
    bootstrap_cli()
    from bootstrap.config import BootstrapConfig  # noqa: PLC0415 - present only with the bootstrap program
    from bootstrap.node import net_config as bootstrap_net_config  # noqa: PLC0415

    raw = tomllib.loads(_find("Secret", "p2pcity-bootstrap")["stringData"]["config.toml"])
    bootstrap = BootstrapConfig.from_dict(raw, tmp_path)
    bootstrap_net_config(bootstrap, "riverside-city")
    assert bootstrap.listen == f"/ip4/0.0.0.0/tcp/{BOOTSTRAP_PORT}"
    assert bootstrap.announce == (addr,), "the bootstrap node announces what the districts dial"


def test_manifests_match_the_kubernetes_schema() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    for path, doc in _manifests():
        try:
            validator.validate(doc, KUBERNETES_VERSION, strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
