"""Access tokens: signed JWTs (HS256) that name a user and when they were issued.

A token is refused when it has expired, when its user is inactive, or when it was issued before the
user's `tokens_valid_after` (set by revocation), so revoking takes effect at once. Times come from
the engine's clock, so tests can move it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jwt

from api.settings import ApiSettings
from engine.foundation import clock
from engine.foundation.logs import get_logger

ALGORITHM = "HS256"
ISSUER = "tansiq"
log = get_logger(__name__)


class InvalidToken(Exception):
    """The token cannot be used (malformed, forged, expired or revoked)."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    issued_at: float
    expires_at: float


def load_secret(settings: ApiSettings) -> bytes:
    """TANSIQ_SECRET_KEY, else the key in TANSIQ_HOME/secret.key, generated (mode 600) on first use."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.home) / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
            log.warning("secret key file was readable by others; made it 600", path=str(path))
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) < 32:
            raise RuntimeError(f"{path} holds a secret shorter than 32 characters; remove it to generate one") from None
        return secret.encode()
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip().encode()


class TokenService:
    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        # A token's signature and claims never change: check each once (expiry is checked on every use).
        self._verified = lru_cache(maxsize=4096)(self._verify)

    def issue(self, user_id: int) -> str:
        now = clock.now().timestamp()
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds, "iss": ISSUER,
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def read(self, token: str) -> TokenClaims:
        claims = self._verified(token)
        now = clock.now().timestamp()
        if claims.expires_at <= now:
            raise InvalidToken("the token has expired")
        if claims.issued_at > now + 60:
            raise InvalidToken("the token was issued in the future")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["sub", "iat", "exp", "iss"], "verify_exp": False, "verify_iat": False,
                         "verify_nbf": False},
            )
            return TokenClaims(int(claims["sub"]), float(claims["iat"]), float(claims["exp"]))
        except (jwt.PyJWTError, TypeError, ValueError):
            raise InvalidToken("the token is not valid") from None


def revoked(claims: TokenClaims, tokens_valid_after: datetime | None) -> bool:
    """Issued at or before the moment all tokens were revoked (the same instant counts as before)."""
    return tokens_valid_after is not None and claims.issued_at <= tokens_valid_after.timestamp()
