"""Terminal authentication for the POS sync API: ``Authorization: Bearer <terminal key>``.

``request.user`` is the :class:`~nodes.models.Terminal` (an AP, not a person) and
``request.auth`` the same terminal, so views read ``request.user.node`` etc.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from nodes.keys import terminal_by_key
from nodes.models import Terminal, TerminalKind


class TerminalKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Encabezado Authorization inválido: use «Bearer <llave>».")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Llave de AP inválida.") from exc
        terminal = terminal_by_key(key)
        if terminal is None:
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


class TerminalRateThrottle(throttling.SimpleRateThrottle):
    """Requests per terminal key (``PAYGO_TERMINAL_RATE``); unauthenticated requests are
    limited per client address so key guessing is throttled too."""

    scope = "terminal"

    def get_cache_key(self, request, view):
        terminal = _terminal(request)
        ident = f"t{terminal.pk}" if terminal else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def terminal_touch(terminal: Terminal) -> None:
    """Record that the terminal was seen (one UPDATE, no history row)."""
    Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=timezone.now())
