"""Terminal API keys: generation, rotation, revocation and lookup.

Keys are 256-bit random tokens, so a plain SHA-256 digest is enough to store them safely
(a slow password hash protects low-entropy secrets and would cost milliseconds on every
request). Lookup is by digest; the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from nodes.models import Terminal

KEY_PREFIX = "pgt_"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@transaction.atomic
def terminal_key_rotate(*, terminal: Terminal) -> str:
    """Give ``terminal`` a new key and return it; the previous key stops working at once.

    The key is returned once and never stored. Audited through the terminal's history.
    """
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    terminal.key_prefix = key[: len(KEY_PREFIX) + 6]
    terminal.key_hash = key_digest(key)
    terminal.key_created_at = timezone.now()
    terminal.save(update_fields=["key_prefix", "key_hash", "key_created_at"])
    return key


@transaction.atomic
def terminal_key_revoke(*, terminal: Terminal) -> None:
    """Remove the terminal's key: every request with it gets 401 from now on."""
    terminal.key_prefix = ""
    terminal.key_hash = ""
    terminal.key_created_at = None
    terminal.save(update_fields=["key_prefix", "key_hash", "key_created_at"])


def terminal_by_key(key: str) -> Terminal | None:
    """The active terminal of an active node holding ``key``, or None."""
    if not key or len(key) > 200:
        return None
    digest = key_digest(key)
    terminal = (
        Terminal.objects.select_related("node", "node__institution")
        .filter(key_hash=digest, active=True, node__active=True, node__institution__active=True)
        .first()
    )
    if terminal is None or not hmac.compare_digest(terminal.key_hash, digest):
        return None
    return terminal
