"""Fill the ${TANSIQ_NGINX_*} placeholders of an nginx file from the environment; the result on stdout.

    TANSIQ_NGINX_SERVER_NAME=tansiq.example.org ... python3 deploy/render_nginx.py deploy/nginx/tansiq.conf

`${NAME}` must be set; `${NAME:-default}` falls back to its default. nginx's own `$variables` are left as they
are (envsubst would need the list of names to spare them). Standard library only: it runs on the proxy host.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{(TANSIQ_NGINX_[A-Z0-9_]+)(?::-([^}]*))?\}")
UNSAFE = re.compile(r"[;{}\s'\"]")  # a value that would end or open an nginx directive


def render(template: str, values: dict[str, str]) -> str:
    missing = sorted({m.group(1) for m in PLACEHOLDER.finditer(template)
                      if m.group(2) is None and not values.get(m.group(1))})
    if missing:
        raise SystemExit(f"error: set {', '.join(missing)}")
    unsafe = sorted(name for name, value in values.items() if name.startswith("TANSIQ_NGINX_") and UNSAFE.search(value))
    if unsafe:
        raise SystemExit(f"error: {', '.join(unsafe)}: no spaces, quotes, braces or semicolons")
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or m.group(2), template)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: render_nginx.py TEMPLATE > rendered.conf", file=sys.stderr)
        return 2
    sys.stdout.write(render(Path(argv[1]).read_text(encoding="utf-8"), dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
