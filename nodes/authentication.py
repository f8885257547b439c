"""Terminal authentication for the POS sync API: ``Authorization: Bearer <terminal key>``.

``request.user`` is the :class:`~nodes.models.Terminal` (an AP, not a person) and
``request.auth`` the same terminal, so views read ``request.user.node`` etc.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.settings import api_settings

from nodes.keys import terminal_by_key
from nodes.models import Terminal, TerminalKind


class TerminalKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>``. Failed attempts are counted per client address
    (:class:`TerminalAuthFailureThrottle`); past the limit that address gets ``429`` without
    its keys even being looked up, so guessing keys is rate-limited."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode():
            return None
        failures = TerminalAuthFailureThrottle()
        wait = failures.wait_if_blocked(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        if len(header) != 2:
            failures.failure_record(request)
            raise exceptions.AuthenticationFailed("Encabezado Authorization inválido: use «Bearer <llave>».")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            failures.failure_record(request)
            raise exceptions.AuthenticationFailed("Llave de AP inválida.") from exc
        terminal = terminal_by_key(key)
        if terminal is None:
            failures.failure_record(request)
            raise exceptions.AuthenticationFailed("Llave de AP desconocida, revocada o inactiva.")
        return terminal, terminal

    def authenticate_header(self, request):
        return self.keyword


def _terminal(request) -> Terminal | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, Terminal) else None


class IsTerminal(permissions.BasePermission):
    """Any authenticated terminal (POS, kiosk or kitchen)."""

    def has_permission(self, request, view):
        return _terminal(request) is not None


class IsSellingTerminal(permissions.BasePermission):
    """A terminal that sells: POS or kiosk. Kitchen keys cannot post sales."""

    message = "Una llave de cocina no puede registrar ventas."

    def has_permission(self, request, view):
        terminal = _terminal(request)
        return terminal is not None and terminal.kind in (TerminalKind.POS, TerminalKind.KIOSK)


class IsKitchenTerminal(permissions.BasePermission):
    message = "Solo las terminales de cocina leen y mueven comandas."

    def has_permission(self, request, view):
        terminal = _terminal(request)
        return terminal is not None and terminal.kind == TerminalKind.KITCHEN


class _RateFromCurrentSettings:
    """DRF binds ``THROTTLE_RATES`` once at import; reading the rate per request makes a
    changed ``REST_FRAMEWORK`` setting (tests, a reloaded environment) take effect."""

    scope: str

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from exc


class TerminalRateThrottle(_RateFromCurrentSettings, throttling.SimpleRateThrottle):
    """Requests per terminal key (``PAYGO_TERMINAL_RATE``); unauthenticated requests that
    reach the throttle (no key at all) are counted per client address."""

    scope = "terminal"

    def get_cache_key(self, request, view):
        terminal = _terminal(request)
        ident = f"t{terminal.pk}" if terminal else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TerminalAuthFailureThrottle(_RateFromCurrentSettings, throttling.SimpleRateThrottle):
    """Failed key checks per client address (``PAYGO_AUTH_FAILURE_RATE``).

    Authentication runs before DRF's throttles, and a refused key never reaches them, so
    :class:`TerminalKeyAuthentication` consults this one itself: only failures are
    recorded, and while an address is over the limit every Bearer request from it is
    refused with ``429``. Behind a reverse proxy, ``PAYGO_NUM_PROXIES`` must say how many
    proxies add ``X-Forwarded-For``, or the address is either spoofable or the proxy's.
    """

    scope = "terminal_auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> bool:
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def wait_if_blocked(self, request) -> float | None:
        """Seconds to wait when this address has used up its failures, else None."""
        if not self._load(request):
            return None
        if len(self.history) >= self.num_requests:
            return self.wait()
        return None

    def failure_record(self, request) -> None:
        if not self._load(request):
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
