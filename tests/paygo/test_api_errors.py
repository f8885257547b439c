"""Every API failure in the contract's error shape: auth, methods, media types, bodies,
unknown URLs, rate limits (DRF's own errors and Django-level ones under /api/)."""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import RequestFactory
from rest_framework.test import APIClient

from nodes.keys import terminal_key_revoke
from nodes.models import Institution, Node, Terminal
from paygo import errors

CONFIG = "/api/v1/pos/config"
HEARTBEAT = "/api/v1/pos/heartbeat"
READ_ENDPOINTS = [CONFIG, "/api/v1/pos/catalog", "/api/v1/pos/balances"]


def _error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def _with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _key(demo, code):
    return next(t["key"] for t in demo["terminals"] if t["code"] == code)


@pytest.mark.django_db
def test_missing_key_is_401_with_a_bearer_challenge(demo):
    for path in READ_ENDPOINTS:
        response = APIClient().get(path)

        _error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["Bearer pgt_unknown", "Bearer", "Bearer a b", "bearer pgt_unknown", "Bearer " + "x" * 300]
)
def test_unknown_or_malformed_key_is_401(demo, header):
    for path in READ_ENDPOINTS:
        response = APIClient().get(path, HTTP_AUTHORIZATION=header)

        _error(response, 401, "authentication_failed")
        assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
def test_revoked_key_is_401(demo):
    key = _key(demo, "N1-CAJA-01")
    terminal_key_revoke(terminal=Terminal.objects.get(code="N1-CAJA-01"))

    for path in READ_ENDPOINTS:
        _error(_with_key(key).get(path), 401, "authentication_failed")


@pytest.mark.django_db
@pytest.mark.parametrize("what", ["terminal", "node", "institution"])
def test_inactive_terminal_node_or_institution_is_401(demo, what):
    key = _key(demo, "N1-CAJA-01")
    assert _with_key(key).get(CONFIG).status_code == 200
    if what == "terminal":
        Terminal.objects.filter(code="N1-CAJA-01").update(active=False)
    elif what == "node":
        Node.objects.filter(code="N1").update(active=False)
    else:
        Institution.objects.filter(code="COL-SANJOSE").update(active=False)

    for path in READ_ENDPOINTS:
        _error(_with_key(key).get(path), 401, "authentication_failed")


@pytest.mark.django_db
def test_wrong_method_is_405_in_the_error_shape(pos_client):
    client = pos_client("N1-CAJA-01")

    _error(client.delete(CONFIG), 405, "method_not_allowed")
    _error(client.post("/api/v1/pos/balances", {}, format="json"), 405, "method_not_allowed")
    _error(client.get(HEARTBEAT), 405, "method_not_allowed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/pos/nothing-here", "/api/v2/pos/config", "/api/", "/api/v1/pos/config/", "/api/v1/pos/catalog/x"]
)
def test_unknown_url_under_api_is_a_json_404(pos_client, path):
    client = pos_client("N1-CAJA-01")

    _error(client.get(path), 404, "not_found")
    _error(client.post(path, {}, format="json"), 404, "not_found")


@pytest.mark.django_db
def test_unknown_url_under_api_is_a_json_404_also_with_debug_on(client, settings):
    settings.DEBUG = True

    _error(client.get("/api/v1/nope"), 404, "not_found")


@pytest.mark.django_db
def test_outside_the_api_django_pages_stay_html(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_non_json_body_is_415(pos_client):
    response = pos_client("N1-CAJA-01").post(HEARTBEAT, "pending_sales=1", content_type="text/plain")

    _error(response, 415, "unsupported_media_type")


@pytest.mark.django_db
@pytest.mark.parametrize("body", ['{"pending_sales": 1', "{'a': 1}", '{"a": NaN}', "[" * 2000])
def test_malformed_json_is_400_malformed_json(pos_client, body):
    response = pos_client("N1-CAJA-01").post(HEARTBEAT, body, content_type="application/json")

    _error(response, 400, "malformed_json")


@pytest.mark.django_db
def test_body_that_is_not_an_object_is_invalid_request(pos_client):
    response = pos_client("N1-CAJA-01").post(HEARTBEAT, "[1, 2]", content_type="application/json")

    _error(response, 400, "invalid_request")


@pytest.mark.django_db
def test_oversized_body_is_413_request_too_large(pos_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = pos_client("N1-CAJA-01")
    big = '{"pending_sales": 1, "padding": "' + "x" * 2000 + '"}'

    error = _error(client.post(HEARTBEAT, big, content_type="application/json"), 413, "request_too_large")

    assert "1000" in error["message"]
    assert Terminal.objects.get(code="N1-CAJA-01").reported_pending_sales is None
    # Just under the limit is fine.
    ok = client.post(HEARTBEAT, '{"pending_sales": 1}', content_type="application/json")
    assert ok.status_code == 200


@pytest.mark.django_db
def test_oversized_body_with_a_lying_content_length_is_413(pos_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = ('{"padding": "' + "x" * 2000 + '"}').encode()

    response = pos_client("N1-CAJA-01").generic(
        "POST", HEARTBEAT, big, content_type="application/json", CONTENT_LENGTH="10"
    )

    # Django reads only the declared length: a truncated body is malformed, never a 2 kB parse.
    _error(response, 400, "malformed_json")


def test_django_level_request_too_big_under_api_is_413_in_the_shape():
    request = RequestFactory().post("/api/v1/pos/sales/batches")

    response = errors.handler400(request, RequestDataTooBig("too big"))

    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "request_too_large"


def test_request_too_big_inside_a_drf_view_is_413_in_the_shape():
    response = errors.api_exception_handler(RequestDataTooBig("too big"), {})

    assert response.status_code == 413
    assert response.data["error"]["code"] == "request_too_large"


def test_django_level_server_error_under_api_is_json_and_html_elsewhere():
    api = errors.handler500(RequestFactory().get("/api/v1/pos/config"))
    admin = errors.handler500(RequestFactory().get("/admin/"))

    assert api.status_code == 500
    assert json.loads(api.content)["error"]["code"] == "server_error"
    assert admin.status_code == 500
    assert not admin["Content-Type"].startswith("application/json")


# --- rate limits ----------------------------------------------------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


@pytest.mark.django_db
def test_terminal_over_its_rate_gets_429_with_retry_after(pos_client, settings):
    _rates(settings, terminal="3/min")
    client = pos_client("N1-CAJA-01")
    for _ in range(3):
        assert client.get(CONFIG).status_code == 200

    response = client.get("/api/v1/pos/catalog")

    error = _error(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 61
    assert error["details"]["retry_after_seconds"] == int(response["Retry-After"])
    # The limit is per terminal key: another register is not affected.
    assert pos_client("N1-CAJA-02").get(CONFIG).status_code == 200


@pytest.mark.django_db
def test_failed_key_attempts_are_throttled_per_address(demo, settings):
    _rates(settings, terminal_auth_failure="3/min")
    guesser = APIClient(REMOTE_ADDR="203.0.113.7")
    for attempt in range(3):
        _error(guesser.get(CONFIG, HTTP_AUTHORIZATION=f"Bearer pgt_guess{attempt}"), 401, "authentication_failed")

    blocked = guesser.get(CONFIG, HTTP_AUTHORIZATION="Bearer pgt_guess-again")

    _error(blocked, 429, "rate_limited")
    assert int(blocked["Retry-After"]) > 0
    # While blocked, that address gets no answer about keys at all, even a valid one...
    valid = f"Bearer {_key(demo, 'N1-CAJA-01')}"
    _error(guesser.get(CONFIG, HTTP_AUTHORIZATION=valid), 429, "rate_limited")
    # ...a forged X-Forwarded-For does not help (no proxy is configured)...
    forged = guesser.get(CONFIG, HTTP_AUTHORIZATION="Bearer pgt_x", HTTP_X_FORWARDED_FOR="198.51.100.1")
    _error(forged, 429, "rate_limited")
    # ...and terminals at other addresses keep working.
    assert APIClient(REMOTE_ADDR="192.0.2.10").get(CONFIG, HTTP_AUTHORIZATION=valid).status_code == 200


@pytest.mark.django_db
def test_successful_requests_do_not_count_as_failures(demo, settings):
    _rates(settings, terminal_auth_failure="2/min")
    valid = _with_key(_key(demo, "N1-CAJA-01"))

    for _ in range(5):
        assert valid.get(CONFIG).status_code == 200
