"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paygo.settings")

app = Celery("paygo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _worker_process_collector(**kwargs) -> None:
    # Each pool process, once forked with the apps loaded (paygo.collector).
    from paygo.collector import collector_tune

    collector_tune()
