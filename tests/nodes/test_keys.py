import pytest

from nodes.keys import key_digest, terminal_by_key, terminal_key_revoke, terminal_key_rotate
from nodes.models import Terminal


@pytest.mark.django_db
def test_rotated_key_is_stored_hashed_and_replaces_the_old_one(demo):
    terminal = Terminal.objects.get(code="N1-CAJA-01")
    old_key = next(t["key"] for t in demo["terminals"] if t["code"] == "N1-CAJA-01")
    assert terminal_by_key(old_key) == terminal

    new_key = terminal_key_rotate(terminal=terminal)

    terminal.refresh_from_db()
    assert terminal.key_hash == key_digest(new_key)
    assert new_key not in {terminal.key_hash, terminal.key_prefix}
    assert terminal_by_key(new_key) == terminal
    assert terminal_by_key(old_key) is None


@pytest.mark.django_db
def test_revoked_or_inactive_terminal_key_is_refused(demo):
    terminal = Terminal.objects.get(code="N1-CAJA-02")
    key = terminal_key_rotate(terminal=terminal)
    Terminal.objects.filter(pk=terminal.pk).update(active=False)
    assert terminal_by_key(key) is None
    Terminal.objects.filter(pk=terminal.pk).update(active=True)
    terminal_key_revoke(terminal=terminal)
    assert terminal_by_key(key) is None
    assert terminal_by_key("") is None
    assert terminal_by_key("x" * 5000) is None
