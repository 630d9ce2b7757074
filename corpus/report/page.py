"""The building blocks of a self-contained HTML report page: inline CSS, escaped text, tables, inline
base64 PNG images, and the notice for a section a run did not compute. Both reports use them: the
corpus run report (corpus/report/render.py) and the training run report (jobs/training_report.py)."""

from __future__ import annotations

import html

NOT_COMPUTED = "not computed in this run"
CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ccc;margin-top:2em} h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .55em;text-align:right} th{background:#f2f2f2}
td.l,th.l{text-align:left} p.note{color:#666;font-size:.85em} img{max-width:100%;display:block;margin:.5em 0}
p.absent{color:#8a6d00;background:#fff8e0;padding:.4em .7em;display:inline-block}
"""


def document(title: str, body: list[str]) -> str:
    """The whole page: no script, no external URL."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def escape(value) -> str:
    return html.escape(str(value))


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def table(header: list[str], rows: list[list], left: int = 1) -> str:
    """`left`: how many leading columns are text (left-aligned). Strings are shown as they are, numbers
    through `number`."""
    def cell(tag, i, v):
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{escape(v) if isinstance(v, str) else number(v)}</{tag}>"
    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    return "<table><tr>" + head + "</tr>" + "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows) + "</table>"


def img(png: str, alt: str) -> str:
    """`png`: base64 PNG bytes (corpus.report.plots.png)."""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{png}">'


def absent(what: str) -> str:
    return f'<p class="absent">{escape(what)}: {NOT_COMPUTED}.</p>'
