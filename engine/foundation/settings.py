"""Every setting in one place, read from `TANSIQ_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANSIQ_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Where the embedded database and files live.")
    database_url: str | None = Field(default=None, description="Any SQLAlchemy URL; SQLite under home if unset.")
    log_level: str = Field(default="WARNING", pattern="(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
                           description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: str = Field(default="console", pattern="^(console|json)$",
                            description="console, or json: one JSON object a line (Tansiq's, uvicorn's and "
                                        "Prefect's lines alike).")
    demo: bool = Field(default=True, description="Seed the demo season when `tansiq run` finds an empty database.")
    public_url: str | None = Field(
        default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The address users see, e.g. https://tansiq.example.org (no trailing path needed). The web "
                    "forms' Origin check, links in emails and report links use it; unset, the request's own "
                    "address is used.")

    # Files (evidence, meeting documents, report archives, import uploads)
    files_backend: str = Field(default="database", pattern="^(database|disk)$",
                               description="Where files are kept: database (every node reaches them; in backups) "
                                           "or disk (under TANSIQ_HOME/files, one node only).")

    # Reports on Prefect
    prefect_api_url: str | None = Field(
        default=None, pattern=r"^https?://\S+/api$",
        description="A running Prefect API (http://host:4200/api). Set on API nodes, report run-now goes "
                    "through its deployments; `tansiq serve` then starts no Prefect server of its own.")
    prefect_port: int = Field(default=4200, ge=1, le=65535,
                              description="The port of the Prefect server `tansiq serve`/`tansiq reports serve` "
                                          "start on 127.0.0.1 (its UI is there too).")

    # Health
    ready_max_timer_lag_seconds: float = Field(
        default=300.0, gt=0, description="/readyz answers 503 when the oldest due timer is later than this.")

    # Process models
    model_max_bytes: int = Field(default=2_000_000, ge=1_000, description="Largest BPMN file accepted.")
    model_max_elements: int = Field(default=5_000, ge=10, description="Most elements in one BPMN file.")

    # Instances
    max_loop_visits: int = Field(default=60, description="How many rounds of a loop one element may run.")
    max_instance_tasks: int = Field(default=2_000, description="Task-tree size past which an instance stops.")

    # Timers
    timer_batch_size: int = Field(default=100, ge=1, le=10_000, description="Instances per timer transaction.")
    timer_poll_seconds: float = Field(default=0.5, gt=0, description="How often the timer worker looks for due "
                                                                     "timers when idle.")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'tansiq.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
