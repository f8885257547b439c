"""Admin base for audited base data: django-simple-history's history pages, with reverting
a past version held to the same permission as editing the row.

django-simple-history (3.13) lets anyone who may *view* a row open one of its past versions
and POST it back: ``history_form_view`` checks view-or-change permission, then saves the
form. The "Revert" button is hidden from read-only users, but the POST itself was accepted,
so «Finanzas» (view permission only) could change base data, and anybody could rewrite rows
the system owns (negative-stock events). Here a POST needs the change permission.
"""

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            obj = self.get_object(request, unquote(object_id))
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
