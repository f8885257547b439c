import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paygo.settings")
application = get_wsgi_application()

# Import every view now (Django would on the first request) and move what the process
# loaded out of the collector's reach: a full collection otherwise walks the ~200,000
# objects of Django, DRF and the apps each time, and an upload of 500 sales allocates
# enough containers to trigger several. A larger first generation makes those requests
# collect a few times instead of dozens; their objects are freed by reference counting
# anyway. Measured in bench/run.py: the collector took ~10 % of a batch's web CPU.
get_resolver().url_patterns  # noqa: B018  (evaluated for its imports)
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 10)
