"""Reading the reports' exports back, as a spreadsheet user (or a script) would."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode()), "CSV must start with a UTF-8 BOM for Excel"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def xlsx_rows(content: bytes) -> list[tuple]:
    sheet = load_workbook(io.BytesIO(content)).active
    return list(sheet.iter_rows(values_only=True))


def xlsx_sheet(content: bytes):
    return load_workbook(io.BytesIO(content)).active
