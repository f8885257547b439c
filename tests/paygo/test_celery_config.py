"""The Celery app is configured from settings as DESIGN principle 3 asks."""

import gc

from celery.signals import worker_process_init
from django.db import InterfaceError, OperationalError

from paygo.celery import app


def test_app_uses_json_late_acks_and_one_message_at_a_time():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit > conf.task_soft_time_limit > 0
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert {entry["task"] for entry in conf.beat_schedule.values()} == {
        "sales.tasks.unreconciled_sales_sweep",
        "inventory.tasks.ledgers_verify",
        "billing.tasks.invoices_pending_assign",
    }


def test_reconcile_tasks_are_registered_and_retry_database_hiccups():
    app.loader.import_default_modules()
    for name in (
        "sales.tasks.sales_reconcile",
        "sales.tasks.unreconciled_sales_sweep",
        "inventory.tasks.ledgers_verify",
        "billing.tasks.invoices_pending_assign",
    ):
        task = app.tasks[name]
        assert task.acks_late is True
        assert set(task.autoretry_for) >= {OperationalError, InterfaceError}
        assert task.retry_backoff


def test_redis_redelivers_a_dead_workers_task_after_the_time_limit_not_an_hour():
    conf = app.conf
    options = conf.broker_transport_options
    # Above the hard limit (a running task is never handed out twice), within minutes.
    assert conf.task_time_limit < options["visibility_timeout"] <= 15 * 60
    # Publishing still fails fast when Redis is down.
    assert options["max_retries"] == 1
    assert options["socket_timeout"] <= 2


def test_worker_processes_keep_the_loaded_apps_out_of_the_collector():
    threshold = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == 50_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
