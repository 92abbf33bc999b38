"""Helpers the web UI tests share (this module holds no tests): a browser-like client per user that
signs in through the login form, and the CSRF token of the page it last read."""

from __future__ import annotations

import re
import warnings
from typing import Any

from tests.test_api_support import PASSWORD, World

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class Browser:
    """One person's cookies: signs in with the form, then gets pages and posts forms with the CSRF token."""

    def __init__(self, world: World, language: str | None = None, address: str = "testclient") -> None:
        self.client = TestClient(world.client.app, follow_redirects=False, raise_server_exceptions=True,
                                 client=(address, 50000))
        if language:
            self.client.cookies.set("tansiq_lang", language)
        self.token = ""

    def get(self, url: str, **kwargs: Any):
        response = self.client.get(url, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, url: str, data: dict[str, Any] | list | None = None, *, csrf: bool = True, **kwargs: Any):
        if isinstance(data, list):  # repeated names: httpx takes a dict of lists
            fields: dict[str, Any] = {}
            for name, value in data:
                fields.setdefault(name, []).append(value)
            if csrf:
                fields["csrf_token"] = self.token
        else:
            fields = dict(data or {})
            if csrf:
                fields["csrf_token"] = self.token
        return self.client.post(url, data=fields, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD):
        self.get("/login")
        response = self.post("/login", {"username": username, "password": password})
        assert response.status_code == 303, response.text
        self.get(response.headers["location"])  # as a browser does: the new page carries the new CSRF token
        return response


def signed_in(world: World, username: str, language: str | None = None) -> Browser:
    browser = Browser(world, language)
    browser.sign_in(username)
    return browser
