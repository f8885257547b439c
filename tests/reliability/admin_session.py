"""An admin user browsing with httpx against a production-settings server over plain HTTP.

Production cookies are ``Secure``, which an HTTP cookie jar never sends back; this session
keeps them by hand (loopback only) so the test can log in like a browser behind TLS would.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx


class AdminSession:
    def __init__(self, base_url: str, timeout: float = 60) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self._keep(self.http.get(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs))

    def post(self, path: str, data: dict, **kwargs) -> httpx.Response:
        headers = self._headers({"Referer": self.base_url + path, **kwargs.pop("headers", {})})
        return self._keep(self.http.post(path, data=data, headers=headers, **kwargs))

    def csrf_token(self, html: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, username: str, password: str) -> httpx.Response:
        page = self.get("/admin/login/?next=/admin/")
        token = self.csrf_token(page.text)
        return self.post(
            "/admin/login/?next=/admin/",
            {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"},
        )

    def close(self) -> None:
        self.http.close()
