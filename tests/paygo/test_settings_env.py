"""Settings come from the environment; the embedded default needs none."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

PROJECT = settings.BASE_DIR


def _settings_in_subprocess(env: dict[str, str], expr: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "paygo.settings", **env},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_embedded_default_is_sqlite_with_eager_celery():
    out = _settings_in_subprocess(
        {"DJANGO_DEBUG": "1"},
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, "
        "settings.DATABASES['default']['OPTIONS']['transaction_mode'], settings.LANGUAGE_CODE, settings.TIME_ZONE",
    )
    assert out == "django.db.backends.sqlite3 True IMMEDIATE es-co America/Bogota"


def test_database_url_and_broker_switch_to_postgres_and_workers():
    out = _settings_in_subprocess(
        {
            "DJANGO_SECRET_KEY": "x" * 50,
            "DATABASE_URL": "postgres://u:p@db.example:5432/paygo",
            "CELERY_BROKER_URL": "redis://cache.example:6379/0",
        },
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['HOST'], "
        "settings.CELERY_TASK_ALWAYS_EAGER, settings.DEBUG",
    )
    assert out == "django.db.backends.postgresql db.example False False"


def test_production_refuses_to_start_without_a_secret_key():
    code = "import django; django.setup()"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "paygo.settings"},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.postgres
@pytest.mark.django_db
def test_suite_runs_on_the_real_postgres_from_database_url():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert "PostgreSQL" in cursor.fetchone()[0]


def test_production_settings_pass_the_deploy_checklist():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "paygo.settings",
            "DJANGO_SECRET_KEY": "k3y-" + "z9Qx" * 16,
            "DJANGO_ALLOWED_HOSTS": "backoffice.example.co",
        },
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_sweep_interval_comes_from_the_environment():
    default = _settings_in_subprocess(
        {"DJANGO_DEBUG": "1"}, "settings.CELERY_BEAT_SCHEDULE['sweep-unreconciled-sales']['schedule']"
    )
    shortened = _settings_in_subprocess(
        {"DJANGO_DEBUG": "1", "PAYGO_SWEEP_SECONDS": "5"},
        "settings.CELERY_BEAT_SCHEDULE['sweep-unreconciled-sales']['schedule']",
    )
    assert (default, shortened) == ("60.0", "5.0")
