"""Security headers and cookies as production sends them, and no account nobody created.

``paygo.test_settings`` relaxes HSTS and secure cookies for the test client; these tests
read the production values from ``paygo.settings`` in a fresh interpreter (DEBUG off, no
test overrides) and apply exactly those. The deploy checklist itself is
``tests/paygo/test_settings_env.py::test_production_settings_pass_the_deploy_checklist``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings

from paygo.demo import USERS

SECURITY_SETTINGS = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SECURE",
]


@pytest.fixture(scope="module")
def production_security() -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {SECURITY_SETTINGS!r}}}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "paygo.settings", "DJANGO_SECRET_KEY": "k3y-" + "z9Qx" * 16}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_ALLOWED_HOSTS": "testserver"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    assert values["DEBUG"] is False
    return values


@pytest.fixture
def production(production_security):
    with override_settings(**production_security):
        yield production_security


HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


def assert_security_headers(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/admin/login/", None, 200),  # an HTML page
        ("/admin/nodes/node/", None, 302),  # a redirect to the login
        ("/api/v1/pos/config", "N1-CAJA-01", 200),  # the API
        ("/api/v1/pos/config", None, 401),  # an API error
        ("/api/v1/nothing-here", None, 404),  # the API's catch-all
        ("/api/schema/", None, 200),
    ],
)
def test_every_kind_of_response_carries_the_security_headers(client, demo, production, path, key, status):
    headers = dict(HTTPS)
    if key:
        headers["HTTP_AUTHORIZATION"] = "Bearer " + next(t["key"] for t in demo["terminals"] if t["code"] == key)

    response = client.get(path, **headers)

    assert response.status_code == status
    assert_security_headers(response)


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_and_cookies_are_secure(client, demo, production):
    assert client.get("/admin/login/").status_code == 301
    assert client.get("/admin/login/")["Location"] == "https://testserver/admin/login/"

    page = client.get("/admin/login/", **HTTPS)
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"]
    admin = demo["admin"]
    logged_in = client.post(
        "/admin/login/",
        {"username": admin["username"], "password": admin["password"], "next": "/admin/"},
        **HTTPS,
    )
    assert logged_in.status_code == 302
    session = logged_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"]
    assert session["httponly"]


@pytest.mark.django_db
def test_a_fresh_database_has_no_account_to_log_in_with():
    # Migrations create roles, never users: the demo's well-known passwords exist only after
    # seed_demo, which refuses without DEBUG unless told (tests/paygo/test_seed_demo.py).
    User = get_user_model()
    assert User.objects.count() == 0
    assert not User.objects.filter(username__in=[u.username for u in USERS]).exists()
