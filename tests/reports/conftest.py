import pytest

from tests.reports.report_data import report_scenario


@pytest.fixture
def scenario(demo):
    """The demo plus sales uploaded and reconciled through the real paths (see report_data)."""
    return report_scenario()
