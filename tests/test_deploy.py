"""deploy/: the settings reference is complete and current, and nginx, systemd and Prometheus accept the files
(each checked by the tool itself where it is installed: `make system-packages` installs them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from api.settings_reference import SECTIONS, env_file, every_setting

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PROMTOOL = shutil.which("promtool")


def test_the_shipped_env_file_is_the_generated_one():
    shipped = (DEPLOY / "tansiq.env").read_text(encoding="utf-8")
    assert shipped == env_file(), "deploy/tansiq.env is out of date: run `tansiq settings env -o deploy/tansiq.env`"


def test_every_field_of_every_settings_class_is_in_the_env_file():
    listed = set(re.findall(r"^#(TANSIQ_[A-Z0-9_]+)=", env_file(), flags=re.MULTILINE))
    for _, cls in SECTIONS:
        prefix = str(cls.model_config["env_prefix"])
        for name in cls.model_fields:
            assert f"{prefix}{name}".upper() in listed, f"{prefix}{name}".upper()
    assert len(listed) == len(every_setting())  # each once


def test_every_tansiq_variable_the_code_reads_is_a_setting():
    """No setting hides in an os.environ read: every TANSIQ_ name in the code is one the reference lists (or
    a test's, or nginx's placeholders)."""
    known = {setting.variable for setting in every_setting()}
    found = set()
    for folder in ("engine", "api", "workflows"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"\bTANSIQ_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    prefixes = {str(cls.model_config["env_prefix"]).rstrip("_") for _, cls in SECTIONS}
    unknown = sorted(name for name in found - known - prefixes
                     if not name.startswith(("TANSIQ_TEST_", "TANSIQ_NGINX_")))
    assert unknown == []


def test_settings_check_names_a_bad_value_and_an_unknown_variable(monkeypatch):
    monkeypatch.setenv("TANSIQ_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("TANSIQ_SMTP_PORT", "not-a-port")
    monkeypatch.setenv("TANSIQ_TIMER_POLL_SECOND", "1")
    result = CliRunner().invoke(cli.app, ["settings", "check"])
    assert result.exit_code == 1
    assert "TANSIQ_LOG_LEVEL:" in result.stderr and "TANSIQ_SMTP_PORT:" in result.stderr
    assert "TANSIQ_TIMER_POLL_SECOND: not a Tansiq setting" in result.stderr


def test_a_bad_setting_is_one_line_for_any_command():
    env = {**os.environ, "TANSIQ_LOG_LEVEL": "LOUD"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "db", "current"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: bad setting TANSIQ_LOG_LEVEL:") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_settings_check_accepts_the_defaults(monkeypatch):
    for name in [n for n in os.environ if n.startswith("TANSIQ_") and not n.startswith("TANSIQ_TEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TANSIQ_PUBLIC_URL", "https://tansiq.example.org")
    result = CliRunner().invoke(cli.app, ["settings", "check"])
    assert result.exit_code == 0, result.output
    assert "1 of" in result.output and "TANSIQ_PUBLIC_URL" in result.output


# --- nginx ------------------------------------------------------------------------------------------------

def _render(values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANSIQ_NGINX_")} | values
    return subprocess.run([sys.executable, str(DEPLOY / "render_nginx.py"), str(DEPLOY / "nginx" / "tansiq.conf")],
                          env=env, capture_output=True, text=True, check=False)


def _site_values(folder: Path) -> dict[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return {"TANSIQ_NGINX_SERVER_NAME": "tansiq.example.org", "TANSIQ_NGINX_LISTEN": "127.0.0.1",
            "TANSIQ_NGINX_CERTIFICATE": str(cert), "TANSIQ_NGINX_CERTIFICATE_KEY": str(key),
            "TANSIQ_NGINX_NODE_1": "127.0.0.1:8001", "TANSIQ_NGINX_NODE_2": "127.0.0.1:8002",
            "TANSIQ_NGINX_CACHE": str(folder / "cache"), "TANSIQ_NGINX_ACCESS_LOG": str(folder / "access.log")}


def test_the_nginx_renderer_refuses_what_is_missing_or_unsafe(tmp_path):
    done = _render({})
    assert done.returncode != 0 and "TANSIQ_NGINX_NODE_1" in done.stderr and done.stdout == ""
    values = _site_values(tmp_path)
    done = _render(values | {"TANSIQ_NGINX_SERVER_NAME": "a.example; return 200"})
    assert done.returncode != 0 and "TANSIQ_NGINX_SERVER_NAME" in done.stderr and done.stdout == ""


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (make system-packages)")
def test_nginx_accepts_the_rendered_site(tmp_path):
    done = _render(_site_values(tmp_path))
    assert done.returncode == 0, done.stderr
    site = done.stdout
    directives = "\n".join(line for line in site.splitlines() if not line.lstrip().startswith("#"))
    assert "${" not in directives and "$request_id" in directives and "127.0.0.1:8002" in directives
    assert "client_max_body_size 32m" in directives
    (tmp_path / "tansiq.conf").write_text(site)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / name).mkdir(parents=True)
    temp = "; ".join(f"{name}_temp_path {tmp_path}/temp/{name}" for name in ("proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log warn; events {{ worker_connections 16; }}\n"
        f"http {{ include /etc/nginx/mime.types; client_body_temp_path {tmp_path}/temp/client_body; {temp};"
        f" include {tmp_path}/tansiq.conf; }}\n")
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


# --- systemd ----------------------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").iterdir())


def test_every_role_has_a_unit_in_the_target():
    names = {path.name for path in UNITS}
    assert {"tansiq-api.service", "tansiq-timers.service", "tansiq-notifications.service", "tansiq-reports.service",
            "tansiq-prefect-server.service", "tansiq-prefect-worker.service", "tansiq.target"} <= names
    for path in UNITS:
        if path.suffix == ".service":
            text = path.read_text()
            assert "WantedBy=tansiq.target" in text and "PartOf=tansiq.target" in text, path.name
            assert "EnvironmentFile=/etc/tansiq/" in text, path.name
    api = (DEPLOY / "systemd" / "tansiq-api.service").read_text()
    assert "--no-timers --no-notifications --no-reports" in api


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    """The units as installed, with /opt/tansiq being this checkout (verify checks that each command exists)."""
    for path in UNITS:
        text = path.read_text().replace("/opt/tansiq/.venv/bin", str(Path(sys.executable).parent))
        text = text.replace("/opt/tansiq", str(ROOT)).replace("/etc/tansiq/", f"{tmp_path}/")
        (tmp_path / path.name).write_text(text)
    (tmp_path / "tansiq.env").write_text(env_file())
    (tmp_path / "prefect.env").write_text("")
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", *[str(tmp_path / p.name) for p in UNITS]],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


# --- Prometheus -------------------------------------------------------------------------------------------

@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (make system-packages)")
def test_promtool_accepts_the_scrape_config_and_the_alerts():
    done = subprocess.run([PROMTOOL, "check", "config", "prometheus.yml"], cwd=DEPLOY, capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr


def test_the_alerts_name_metrics_tansiq_exports():
    from api import metrics

    exported = set(re.findall(r'"(tansiq_[a-z_]+)"', Path(metrics.__file__).read_text()))
    used = set(re.findall(r"\b(tansiq_[a-z_]+?)(?:_bucket)?\b", (DEPLOY / "tansiq-alerts.yml").read_text()))
    assert used - {"tansiq"} <= exported, used - exported
