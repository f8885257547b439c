import pytest

from tests.reports.report_data import report_scenario


@pytest.fixture
def scenario(demo):
    """The demo plus the report rows (stand-in for ingest + reconcile, see report_data)."""
    return report_scenario()
