"""A season's deployment, as a unit runs it: behind nginx with TLS, on PostgreSQL, two API nodes, separate timer
and notification workers, reports on a Prefect server with a `process` worker, mail to a real SMTP server,
and Prometheus scraping the nodes (see tests/topology.py for the processes).

Through https:// in Chromium: the secretariat creates and launches a directive; an entity user uploads
evidence and it downloads through node 1 and node 2; a report "run now" becomes a Prefect flow run run by
the worker, and its files download through either node; Prometheus sees both nodes' timer-lag and outbox
gauges; then node 2 is killed, and a supervisor extends from the board the step whose deadline the
separate timer worker fired, whose email reached the SMTP server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests import topology
from tests.smtp_server import SmtpServer
from tests.test_api_support import PDF
from tests.topology import NGINX, PREFECT, PROMETHEUS, ROOT, TANSIQ, Topology, wait_until

CHROMIUM = os.environ.get("TANSIQ_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "topology"
PASSWORD = "a long topology password"
PEOPLE = {"secretariat": ("secretariat", None, "سكرتارية لجنة الحج", "secretariat@hajj.example"),
          "supervisor": ("supervisor", None, "المشرف", "supervisor@hajj.example"),
          "housing.user": ("entity_user", "housing", "مستخدم الإسكان", "housing.user@hajj.example"),
          "reception.user": ("entity_user", "reception", "مستخدم الاستقبال", "reception.user@hajj.example")}

missing = [path for path in (CHROMIUM, NGINX, PROMETHEUS) if not Path(path).exists()]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(bool(missing), reason=f"not installed: {missing} (make system-packages)")]


# --- bringing the topology up ---------------------------------------------------------------------------

def _seed(site: Topology) -> None:
    """What an operator does once: the schema, the shipped models, entities and users with the CLI; the season
    (an administrator's page) with the engine."""
    site.run([TANSIQ, "db", "upgrade"])
    site.run([TANSIQ, "models", "deploy", *(str(path) for pattern in ("*.dmn", "*.bpmn")
                                                  for path in sorted((ROOT / "bpmn").glob(pattern)))])
    for code, ar, en in (("housing", "الإسكان", "Housing"), ("reception", "مراكز الاستقبال", "Reception centres")):
        site.run([TANSIQ, "entities", "create", "--code", code, "--name-ar", ar, "--name-en", en,
                  "--email", f"{code}@hajj.example"])
    for username, (role, entity, name, email) in PEOPLE.items():
        command = [TANSIQ, "users", "create", "--username", username, "--role", role, "--full-name", name,
                   "--email", email, "--password-stdin"] + (["--entity", entity] if entity else [])
        done = subprocess.run(command, input=PASSWORD + "\n", env=site.env(), capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    from engine.calendar import seasons
    from engine.calendar.business_calendar import gregorian_to_hijri
    from engine.storage.db import Database

    db = Database(site.env()["TANSIQ_DATABASE_URL"])
    try:
        today = datetime.now(UTC).date()
        with db.transaction() as session:
            seasons.create_season(session, gregorian_to_hijri(today)[0], today - timedelta(days=30),
                                  today + timedelta(days=60))
    finally:
        db.dispose()


def _overdue_directive(site: Topology) -> str:
    """A directive launched 10 hours ago with a 6-hour deadline, acknowledged: its deadline timer is due, for
    the separate timer worker to fire (nothing is fired in this process)."""
    from engine.directives import directives
    from engine.directives.directives import NewDirective
    from engine.foundation import clock
    from engine.storage.db import Database
    from engine.work import instances
    from engine.work.work_items import OPEN, WorkItem

    db = Database(site.env()["TANSIQ_DATABASE_URL"])
    try:
        with clock.frozen_at(datetime.now(UTC) - timedelta(hours=10)):
            with db.transaction() as session:
                directive = directives.create(session, NewDirective(
                    title="صيانة أجهزة التكييف في مراكز الاستقبال", title_en="Service the air conditioning",
                    kind="directive", responsible_entity="reception", deadline="PT6H",
                    process_model_key="directive_standard"), "secretariat", launch_now=True)
                reference, instance_id = directive.reference, directive.instance_id
            with db.transaction() as session:
                item = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id,
                                                             WorkItem.status == OPEN))
                instances.complete_task(session, item.id, {}, "reception.user")
    finally:
        db.dispose()
    return reference


def _nginx(site: Topology) -> None:
    """deploy/nginx/tansiq.conf, rendered with this topology's ports and certificate, in a main config of its
    own (prefix, pid, logs and temporary files under the topology's folder)."""
    cert, key = topology.self_signed_certificate(site.folder)
    conf = site.folder / "nginx"
    conf.mkdir()
    values = {
        "TANSIQ_NGINX_SERVER_NAME": "127.0.0.1",
        "TANSIQ_NGINX_LISTEN": "127.0.0.1",
        "TANSIQ_NGINX_CACHE": str(conf / "cache"),
        "TANSIQ_NGINX_ACCESS_LOG": str(conf / "tansiq.access.log"),
        "TANSIQ_NGINX_HTTPS_PORT": str(site.https_port),
        "TANSIQ_NGINX_HTTP_PORT": str(site.http_port),
        "TANSIQ_NGINX_CERTIFICATE": str(cert),
        "TANSIQ_NGINX_CERTIFICATE_KEY": str(key),
        "TANSIQ_NGINX_NODE_1": f"127.0.0.1:{site.node_ports[0]}",
        "TANSIQ_NGINX_NODE_2": f"127.0.0.1:{site.node_ports[1]}",
    }
    rendered = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "render_nginx.py"), str(ROOT / "deploy" / "nginx" / "tansiq.conf")],
        env={**os.environ, **values}, capture_output=True, text=True, check=True).stdout
    (conf / "tansiq.conf").write_text(rendered)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (conf / "temp" / name).mkdir(parents=True)
    (conf / "nginx.conf").write_text(f"""
user root;
worker_processes 1;
pid {conf}/nginx.pid;
error_log {conf}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {conf}/access.log;
    client_body_temp_path {conf}/temp/client_body;
    proxy_temp_path {conf}/temp/proxy;
    fastcgi_temp_path {conf}/temp/fastcgi;
    uwsgi_temp_path {conf}/temp/uwsgi;
    scgi_temp_path {conf}/temp/scgi;
    include {conf}/tansiq.conf;
}}
""")
    site.run([NGINX, "-t", "-p", str(conf), "-c", str(conf / "nginx.conf")])
    site.start("nginx", [NGINX, "-p", str(conf), "-c", str(conf / "nginx.conf"), "-g", "daemon off;"])
    site.wait_http(f"{site.public_url}/livez", service="nginx", verify=False)


def _prometheus(site: Topology) -> None:
    """deploy/prometheus.yml (and its alert rules) with this topology's nodes, scraping every second."""
    import yaml

    folder = site.folder / "prometheus"
    folder.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["rule_files"] = [str(ROOT / "deploy" / name) for name in config["rule_files"]]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in site.node_ports]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    site.start("prometheus", [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                              f"--storage.tsdb.path={folder / 'data'}",
                              f"--web.listen-address=127.0.0.1:{site.prometheus_port}"])
    site.wait_http(f"http://127.0.0.1:{site.prometheus_port}/-/ready", service="prometheus")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topology")
    smtp = SmtpServer()
    smtp.start()
    with topology.topology(folder) as built:
        built.smtp_port = smtp.port
        try:
            built.create_databases()
            _seed(built)
            built.start("prefect-server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                                           str(built.prefect_port), "--analytics-off"],
                        PREFECT_SERVER_DATABASE_CONNECTION_URL=topology.database_url(built.prefect_db, "asyncpg"),
                        PREFECT_UI_ENABLED="false", PREFECT_API_URL="")
            for index, workers in enumerate((2, 1)):
                built.start(f"node-{index + 1}", [TANSIQ, "serve", "--port", str(built.node_ports[index]),
                                                  "--workers", str(workers), "--no-timers", "--no-notifications",
                                                  "--no-reports"])
            built.start("timers", [TANSIQ, "timers", "run"])
            built.start("notifications", [TANSIQ, "notifications", "run"])
            for index in (0, 1):
                built.wait_http(f"{built.node_url(index)}/readyz", service=f"node-{index + 1}")
            _nginx(built)
            _prometheus(built)
            built.wait_http(f"{built.prefect_api}/health", timeout=120, service="prefect-server")
            built.run([TANSIQ, "reports", "deploy", "--pool", "tansiq-reports"])
            built.start("prefect-worker", [PREFECT, "worker", "start", "--pool", "tansiq-reports", "--type",
                                           "process", "--name", f"topology-{built.tag}", "--limit", "2"])
            built.smtp = smtp
            yield built
        except BaseException:
            print(built.diagnostics(), file=sys.stderr)
            raise
        finally:
            smtp.stop()


@pytest.fixture(scope="module")
def chromium(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Person:
    """One signed-in person in Chromium, on https:// through nginx only (every other request is refused)."""

    def __init__(self, site: Topology, chromium, username: str, language: str = "ar") -> None:
        self.site, self.username, self.outside, self.errors = site, username, [], []
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale=f"{language}-SA",
                                            timezone_id="Asia/Riyadh", ignore_https_errors=True)
        self.context.add_cookies([{"name": "tansiq_lang", "value": language, "url": site.public_url}])
        self.context.route("**/*", self._only_the_proxy)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.set_default_timeout(15_000)
        self.page.goto(site.public_url + "/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state("domcontentloaded")
        assert "/login" not in self.page.url, self.page.inner_text("main")

    def _only_the_proxy(self, route) -> None:
        if route.request.url.startswith(self.site.public_url + "/") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, path: str) -> None:
        response = self.page.goto(self.site.public_url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        self.page.wait_for_load_state("load")

    def flash(self) -> str:
        return self.page.locator(".flash").inner_text()

    def session_cookie(self) -> str:
        return next(c["value"] for c in self.context.cookies() if c["name"] == "tansiq_session")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        assert self.outside == [] and self.errors == [], (self.outside, self.errors)
        self.context.close()


def _from_node(site: Topology, index: int, path: str, cookie: str) -> httpx.Response:
    """A page or file straight from one node, with a user's session (as nginx would pass it on)."""
    return httpx.get(site.node_url(index) + path, cookies={"tansiq_session": cookie}, timeout=30,
                     headers={"X-Forwarded-Proto": "https"})


def _token(site: Topology, username: str) -> str:
    response = httpx.post(f"{site.public_url}/api/v1/auth/token", data={"username": username, "password": PASSWORD},
                          verify=False, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _prometheus_values(site: Topology, query: str) -> dict[str, float]:
    answer = httpx.get(f"http://127.0.0.1:{site.prometheus_port}/api/v1/query", params={"query": query},
                       timeout=10).json()
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in answer["data"]["result"]}


# --- the season, through the proxy ---------------------------------------------------------------------

def test_a_season_through_the_proxy_on_two_nodes_with_separate_workers(site: Topology, chromium, tmp_path):
    overdue_reference = _overdue_directive(site)

    # The secretariat creates and launches a directive, through https:// (the forms' Origin is https).
    secretariat = Person(site, chromium, "secretariat")
    page = secretariat.page
    secretariat.open("/directives/new")
    page.fill("#title", "تجهيز مراكز الاستقبال قبل وصول الحجاج")
    page.fill("#title_en", "Prepare the reception centres")
    page.select_option("#kind", "directive")
    page.select_option("#responsible_entity", "housing")
    page.select_option("#process_model_key", "directive_standard")
    page.check("input[name=deadline_mode][value=duration]")
    page.fill("#deadline-duration", "3 days")
    page.click("button[name=action][value=launch]")
    page.wait_for_load_state("load")
    assert "أُطلق التوجيه" in secretariat.flash()
    reference = page.locator(".eyebrow .ref").inner_text().strip()
    secretariat.shot("01-launched-through-the-proxy")

    # The entity acknowledges the step, then reports progress with a file.
    housing = Person(site, chromium, "housing.user")
    page = housing.page
    housing.open("/inbox")
    page.locator("li.work", has_text=reference).locator("a.work-title").click()
    page.wait_for_load_state("load")
    page.fill("#f-note", "تم الاستلام")
    page.click("#complete-form button[type=submit]")
    page.wait_for_load_state("load")
    page.wait_for_selector("#progress-form")  # the entity's next step opens at once
    evidence = tmp_path / "محضر المعاينة.pdf"
    content = PDF + b"%" + os.urandom(300_000).hex().encode() + b"\n"  # several chunks of the file store
    evidence.write_bytes(content)
    page.fill("#percent", "60")
    page.set_input_files("#progress-files", str(evidence))
    page.click("#progress-form button[type=submit]")
    page.wait_for_load_state("load")
    link = page.locator("a[href^='/evidence/']").first
    href = link.get_attribute("href")
    housing.shot("02-evidence-uploaded")
    # It downloads through the proxy, and from each node on its own: the file is in the database.
    through_proxy = page.context.request.get(site.public_url + href)
    assert through_proxy.ok and hashlib.sha256(through_proxy.body()).hexdigest() == hashlib.sha256(content).hexdigest()
    for index in (0, 1):
        response = _from_node(site, index, href, housing.session_cookie())
        assert response.status_code == 200, (index, response.text[:300])
        assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(content).hexdigest()

    # A report "run now" over the API: a flow run of the deployment, run by the Prefect worker.
    token = _token(site, "secretariat")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    response = httpx.post(f"{site.public_url}/api/v1/reports/daily/run", verify=False, timeout=60,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"day": yesterday.isoformat(), "formats": ["pdf", "xlsx"], "languages": ["ar"]})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued" and queued["prefect_flow_run_id"]

    def finished():
        run = httpx.get(f"{site.public_url}/api/v1/reports/{queued['id']}", verify=False, timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).json()
        return run if run["status"] in ("succeeded", "failed") else None
    run = wait_until(finished, 240, "the report run did not finish")
    assert run["status"] == "succeeded", (run, site.services["prefect-worker"].tail())
    def flow_run_over():  # the report's row is final a moment before the flow run that wrote it ends
        found = httpx.get(f"{site.prefect_api}/flow_runs/{queued['prefect_flow_run_id']}", timeout=10).json()
        return found if found["state"]["type"] not in ("SCHEDULED", "PENDING", "RUNNING") else None
    flow_run = wait_until(flow_run_over, 60, "the flow run did not end")
    assert flow_run["state"]["type"] == "COMPLETED" and flow_run["deployment_id"]
    for file in run["files"]:
        for index in (0, 1):
            got = httpx.get(site.node_url(index) + file["url"], headers={"Authorization": f"Bearer {token}"},
                            timeout=30)
            assert got.status_code == 200 and len(got.content) == file["size"] > 0, (index, file)

    # The timer worker fires the overdue deadline; the notification worker mails the escalation.
    mail = wait_until(lambda: [m for m in site.smtp.mailbox.received if overdue_reference in str(m.message["Subject"])],
                      90, f"no email about {overdue_reference} reached the SMTP server")
    body = mail[0].message.get_body(("plain",)).get_content()
    assert site.public_url in body  # the link is the address users see, not a node's

    # Prometheus scraped both nodes: the timer lag and outbox gauges are there for each.
    for metric in ("tansiq_timer_lag_seconds", "tansiq_notification_deliveries_pending"):
        values = wait_until(lambda metric=metric: (found := _prometheus_values(site, metric)) and len(found) == 2
                            and found, 30, f"prometheus did not scrape {metric} from both nodes")
        assert set(values) == {f"127.0.0.1:{port}" for port in site.node_ports}

    # Node 2 dies; users carry on through node 1.
    site.services["node-2"].kill()
    supervisor = Person(site, chromium, "supervisor")
    page = supervisor.page
    supervisor.open("/escalations")
    row = page.locator("table.board tbody tr", has_text=overdue_reference)
    row.locator("details.act summary").click()
    row.locator("select[name=action]").select_option("extend")
    row.locator("input[value=duration]").check()
    row.locator("input[name$=_duration]").fill("48 hours")
    row.locator("textarea[name=note]").fill("تمديد يومين لتأخر التوريد")
    row.locator("button[type=submit]").click()
    page.wait_for_load_state("load")
    assert "مُدّد الموعد النهائي" in supervisor.flash()  # the notice says what was done
    supervisor.shot("03-extended-after-node-2-died")
    for _ in range(6):  # nginx passes every request to node 1 now
        secretariat.open("/directives")
        assert reference in secretariat.page.inner_text("main")
    up = wait_until(lambda: (found := _prometheus_values(site, 'up{job="tansiq"}')) and len(found) == 2
                    and found[f"127.0.0.1:{site.node_ports[1]}"] == 0 and found, 30, "prometheus did not see node 2 go")
    assert up[f"127.0.0.1:{site.node_ports[0]}"] == 1.0
    for person in (secretariat, housing, supervisor):
        person.close()
    assert all(site.services[name].alive() for name in ("node-1", "timers", "notifications", "prefect-worker"))
