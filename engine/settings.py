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
    log_level: str = "WARNING"
    log_format: str = Field(default="console", pattern="^(console|json)$")
    demo: bool = Field(default=True, description="Seed the demo season when `tansiq run` finds an empty database.")

    # Process models
    model_max_bytes: int = 2_000_000
    model_max_elements: int = 5_000

    # Instances
    max_loop_visits: int = Field(default=60, description="How many rounds of a loop one element may run.")
    max_instance_tasks: int = Field(default=2_000, description="Task-tree size past which an instance stops.")

    # Timers
    timer_batch_size: int = 100
    timer_poll_seconds: float = 0.5

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'tansiq.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
