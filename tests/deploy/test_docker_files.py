"""The production image and compose files, checked statically (there is no Docker engine here).

Checks that the compose file parses and has every component, that every file it or the
Dockerfile references exists in the build context, that every ``AIRFLOW__SECTION__KEY`` is a real
option of the installed Airflow and providers, that every other variable is one popsync's code
(or the library under it) reads, that the commands are real CLI commands, and that the run
configuration shipped in the image loads.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / "env.example"

AIRFLOW_SERVICES = {
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    "airflow-triggerer", "airflow-worker",
}
ALL_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "portal"}
# Read by the official postgres image's entrypoint (hub.docker.com/_/postgres).
POSTGRES_IMAGE_VARS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA"}
# Read by libpq inside psycopg, popsync's PostgreSQL driver, when a URL carries no password.
LIBPQ_VARS = {"PGPASSWORD"}
# popsync's code: where it may read environment variables.
CODE_DIRS = ("popsync", "matching", "pipelines", "expectations", "portal", "dags")
ENV_READ = re.compile(
    r"""(?:os\.environ(?:\.get)?|os\.getenv|environ\.get)\s*[\(\[]\s*["']([A-Z0-9_]+)["']"""
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, rest in _dockerfile_instructions():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def env_vars_read_by_popsync() -> set[str]:
    names = set()
    for folder in CODE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            names.update(ENV_READ.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


def test_compose_parses_with_every_component(compose):
    assert set(compose["services"]) == ALL_SERVICES
    for name, service in compose["services"].items():
        assert service.get("image") or service.get("build"), name
    for name in AIRFLOW_SERVICES | {"portal"}:
        assert compose["services"][name]["image"] == "${POPSYNC_IMAGE:-popsync:latest}"
        assert compose["services"][name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_every_long_running_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        if name == "airflow-init":
            assert service["restart"] == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"


def test_depends_on_names_real_services_and_waits_for_init(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        condition = services[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully"


def test_workers_scale_with_the_scale_flag(compose):
    worker = compose["services"]["airflow-worker"]
    # A fixed container name or host port would make the second replica fail to start.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["celery", "worker"]
    assert "--celery-hostname" not in worker["command"]


def test_referenced_files_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert context == REPO
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes") or []:
            volume = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", volume)  # the default of ${VAR:-x}
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_dockerfile_copies_existing_files_not_ignored():
    ignored = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [rest for keyword, rest in _dockerfile_instructions() if keyword == "COPY"]
    assert copies
    for rest in copies:
        parts = [p for p in rest.split() if not p.startswith("--")]
        for source in parts[:-1]:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    for name in ("popsync", "matching", "pipelines", "expectations", "portal", "dags"):
        assert any(rest.startswith(f"--chown=airflow:0 {name} ") for rest in copies), name


def test_dockerfile_builds_on_airflow_and_installs_the_lock():
    instructions = _dockerfile_instructions()
    args = dict(re.findall(r"(\w+)=(\S+)", " ".join(r for k, r in instructions if k == "ARG")))
    assert args["AIRFLOW_IMAGE"] == "apache/airflow:3.3.2-python3.11"
    assert ("FROM", "${AIRFLOW_IMAGE}") in instructions
    lock = (REPO / "requirements.lock").read_text()
    airflow_pin = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert f'"apache-airflow=={airflow_pin}" -r /opt/popsync/requirements.lock' in runs
    assert "pip install --no-cache-dir --no-deps /opt/popsync" in runs


def test_airflow_variables_are_real_options(compose):
    from airflow.configuration import conf

    options = {
        (section.lower(), key.lower())
        for section, body in conf.configuration_description.items()
        for key in (body.get("options") or {})
    }
    variables = dict(_dockerfile_env())
    for service in compose["services"].values():
        variables.update(_env(service))
    airflow_vars = [v for v in variables if v.startswith("AIRFLOW__")]
    assert len(airflow_vars) > 15
    for variable in airflow_vars:
        _, section, key = variable.split("__", 2)
        assert (section.lower(), key.lower()) in options, f"{variable} is not an Airflow option"


def test_other_variables_are_read_by_popsync(compose):
    read = env_vars_read_by_popsync()
    assert "POPSYNC_CONFIG" in read, "the DAG should read POPSYNC_CONFIG"
    variables = dict(_dockerfile_env())
    for name in AIRFLOW_SERVICES | {"portal"}:
        variables.update(_env(compose["services"][name]))
    others = {v for v in variables if not v.startswith("AIRFLOW__")}
    assert others <= read | LIBPQ_VARS, f"read by nothing: {sorted(others - read - LIBPQ_VARS)}"


def test_postgres_variables_are_read_by_its_image_or_init_scripts(compose):
    scripts = " ".join(p.read_text() for p in (DOCKER / "postgres-init").iterdir())
    for variable in _env(compose["services"]["postgres"]):
        assert variable in POSTGRES_IMAGE_VARS or f"${variable}" in scripts, variable


def test_compose_variables_are_documented(compose):
    # $${VAR} is escaped for compose: the container's shell expands it, not compose.
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(), re.M))
    assert used == documented, f"undocumented: {used - documented}, unused: {documented - used}"
    operations = (REPO / "docs" / "operations.md").read_text()
    for variable in used:
        assert variable in operations, f"{variable} is not explained in docs/operations.md"


def test_airflow_commands_are_real(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in AIRFLOW_SERVICES:
        command = compose["services"][name]["command"]
        args = parser.parse_args(command)
        assert callable(args.func), name
    for name in ("airflow-dag-processor", "airflow-triggerer"):
        check = compose["services"][name]["healthcheck"]["test"][1]
        argv = check.split()[1:]
        parser.parse_args([a.strip('"') for a in argv])


def test_portal_command_is_a_real_popsync_command(compose):
    from pipelines.cli import build_parser

    portal = compose["services"]["portal"]
    assert portal["entrypoint"][-1] == "popsync"
    command = [str(a) for a in portal["command"]]
    args = build_parser(command[0]).parse_args(command)
    assert args.command == "serve"


def test_shipped_run_configuration_loads():
    from pipelines.config import build_config

    config = build_config(yaml.safe_load((DOCKER / "popsync.yaml").read_text()))
    assert config.out_dir == Path("/data/out")
    assert config.db_url.startswith("postgresql+psycopg://popsync@postgres")
    assert config.registry.source.startswith("/data/")


def test_health_checks_probe_real_endpoints(compose):
    """What each health check calls exists: Celery app path, scheduler port, portal route."""
    import importlib

    from airflow.configuration import conf

    services = compose["services"]
    worker_check = services["airflow-worker"]["healthcheck"]["test"][1]
    app_path = re.search(r"--app (\S+)", worker_check).group(1)
    module_name, _, attribute = app_path.rpartition(".")
    assert hasattr(importlib.import_module(module_name), attribute), app_path
    scheduler_port = conf.getint("scheduler", "scheduler_health_check_server_port")
    assert f"localhost:{scheduler_port}/health" in " ".join(
        services["airflow-scheduler"]["healthcheck"]["test"]
    )
    api_check = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in api_check  # the harness waits on the same endpoint
    portal_check = " ".join(services["portal"]["healthcheck"]["test"])
    route = re.search(r"localhost:8000(/\S+?)'", portal_check).group(1)
    routes = "".join(path.read_text(encoding="utf-8")
                     for path in (REPO / "portal" / "routers").glob("*.py"))
    assert f'"{route}"' in routes
