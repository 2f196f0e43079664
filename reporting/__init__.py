"""One offline HTML report of what hwprof measured, learned and found: the top layer (nothing but the CLI imports it).

``build_report([store, predictor_dir, search_dir], Path("report.html"))``
reads each input by kind (``reporting.inputs``), draws it (``reporting.sections``)
and writes one page with plotly.js embedded (``reporting.page``).
"""

from reporting.build import build_report
from reporting.inputs import detect_kind, detect_kinds, load_input
from reporting.page import ReportTable

__all__ = ["ReportTable", "build_report", "detect_kind", "detect_kinds", "load_input"]
