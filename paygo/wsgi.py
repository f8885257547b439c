import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from paygo.collector import collector_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paygo.settings")
application = get_wsgi_application()

# Import every view now (Django would on the first request), then keep what the process
# loaded out of the collector's reach (paygo.collector).
get_resolver().url_patterns  # noqa: B018  (evaluated for its imports)
collector_tune()
