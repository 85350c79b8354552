"""JSON: the report's full dict form (lossless: :func:`parse_json` gives the same Report back)."""

from __future__ import annotations

import json

from cetbench.analysis.report import Report, report_from_dict, report_to_dict


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, allow_nan=False) + "\n"


def parse_json(text: str) -> Report:
    return report_from_dict(json.loads(text))
