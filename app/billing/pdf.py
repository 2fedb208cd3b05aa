"""Printable documents: an HTML template rendered by WeasyPrint into PDF bytes.

Nothing is fetched over the network while rendering: the URL fetcher allows `data:` URIs only, so a
template (or a patient's name that somehow reached it as markup) cannot make the server call out.
Fonts come from the system (fontconfig: DejaVu / Liberation are installed by scripts/setup.sh).
"""
from __future__ import annotations

from flask import render_template

PRINT_CSS = """
@page {
  size: A4;
  margin: 18mm 16mm 20mm 16mm;
  @bottom-left { content: string(doc-title); font-size: 8pt; color: #6c757d; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt; color: #6c757d; }
}
html { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 9.5pt; color: #212529; }
h1 { font-size: 17pt; margin: 0 0 2mm 0; string-set: doc-title content(); }
h2 { font-size: 10.5pt; margin: 7mm 0 2mm 0; text-transform: uppercase; letter-spacing: .04em; color: #495057; }
.header { display: table; width: 100%; border-bottom: 1.5pt solid #0d6efd; padding-bottom: 4mm; }
.header > div { display: table-cell; vertical-align: top; }
.clinic-name { font-size: 14pt; font-weight: bold; color: #0d6efd; }
.muted { color: #6c757d; }
.small { font-size: 8pt; }
.meta { text-align: right; }
.meta table { margin-left: auto; }
.meta td { padding: 0 0 0 4mm; }
.parties { display: table; width: 100%; margin-top: 6mm; }
.parties > div { display: table-cell; width: 50%; vertical-align: top; }
.label { font-size: 7.5pt; text-transform: uppercase; letter-spacing: .05em; color: #6c757d; }
table.lines { width: 100%; border-collapse: collapse; margin-top: 2mm; }
table.lines th { text-align: left; font-size: 8pt; text-transform: uppercase; color: #495057;
                 border-bottom: 1pt solid #adb5bd; padding: 1.5mm 1.5mm; }
table.lines td { border-bottom: .5pt solid #dee2e6; padding: 1.5mm 1.5mm; vertical-align: top; }
table.lines .num, table.totals .num { text-align: right; white-space: nowrap; }
table.lines .num { width: 1%; padding-left: 6mm; }
table.lines tr { page-break-inside: avoid; }
table.totals { margin-left: auto; margin-top: 3mm; border-collapse: collapse; min-width: 75mm; }
table.totals td { padding: 1mm 1.5mm; }
table.totals tr.grand td { border-top: 1pt solid #212529; font-weight: bold; }
table.totals tr.balance td { font-size: 12pt; font-weight: bold; border-top: 1.5pt solid #0d6efd; padding-top: 2mm; }
.status { display: inline-block; padding: .5mm 2mm; border: 1pt solid #6c757d; border-radius: 2mm;
          font-size: 8pt; text-transform: uppercase; letter-spacing: .05em; }
.status.paid { border-color: #198754; color: #198754; }
.status.void { border-color: #dc3545; color: #dc3545; }
.void-note { margin-top: 4mm; padding: 2mm 3mm; border: 1pt solid #dc3545; color: #dc3545; }
.footer-note { margin-top: 10mm; font-size: 8pt; color: #6c757d; }
"""


def _local_only_fetcher():
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def html_to_pdf(html: str, *, css: str = PRINT_CSS) -> bytes:
    """PDF bytes of an HTML document, with `css` as its only stylesheet; no network fetches."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fetcher = _local_only_fetcher()
    fonts = FontConfiguration()
    stylesheet = CSS(string=css, font_config=fonts, url_fetcher=fetcher)
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(stylesheets=[stylesheet],
                                                                            font_config=fonts)


def render_pdf(template_name: str, /, **context) -> bytes:
    """Render a Jinja template (a whole HTML document) to PDF bytes."""
    return html_to_pdf(render_template(template_name, **context))
