"""The API's settings: the engine's `TANSIQ_*` settings plus tokens, request and evidence limits."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from engine.directives.evidence_store import CONTENT_TYPES, Limits
from engine.foundation.settings import Settings


class ApiSettings(Settings):
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs access tokens (TANSIQ_SECRET_KEY); when unset, one is generated once and kept in "
                    "TANSIQ_HOME/secret.key (mode 600).",
    )
    token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600, description="Access token lifetime.")
    max_request_bytes: int = Field(default=32_000_000, ge=1_000, description="Largest multipart request body.")
    max_json_bytes: int = Field(default=1_000_000, ge=1_000, description="Largest body of any other request.")
    evidence_max_bytes: int = Field(default=10_000_000, ge=1, description="Largest evidence file.")
    evidence_max_files: int = Field(default=5, ge=1, le=50, description="Evidence files in one request.")
    evidence_kinds: list[str] = Field(default_factory=lambda: sorted(CONTENT_TYPES),
                                      description="Accepted evidence kinds: pdf png jpeg xlsx docx txt.")
    evidence_max_unzipped_bytes: int = Field(default=100_000_000, ge=1)
    evidence_max_zip_ratio: int = Field(default=100, ge=2)
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of the reverse proxies in front of `tansiq serve` "
                    "(TANSIQ_TRUSTED_PROXIES). Their X-Forwarded-For gives the client's address, which the "
                    "sign-in throttle and the public form's rate limit count by; unset behind a proxy, every "
                    "client has the proxy's address and shares its limits.",
        pattern=r"^[0-9A-Fa-f:., /*]*$",
    )

    secure_cookies: bool = Field(
        default=False, description="Mark the session cookies Secure even when the request reached Tansiq over "
                                   "plain HTTP (behind a proxy that ends TLS); on when TANSIQ_PUBLIC_URL is https.")

    @property
    def evidence_limits(self) -> Limits:
        return Limits(max_bytes=self.evidence_max_bytes, max_files=self.evidence_max_files,
                      kinds=frozenset(k for k in self.evidence_kinds if k in CONTENT_TYPES),
                      max_unzipped_bytes=self.evidence_max_unzipped_bytes, max_zip_ratio=self.evidence_max_zip_ratio)


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    return ApiSettings()
