"""The report's HTML page: its sections of parts (HTML fragments and named figures) written as one
self-contained page, plotly.js inlined once, and written atomically (a reloading browser never
reads half a file).
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Sequence

import plotly.graph_objects as go

from analysis import html_table
from analysis.results import Study

CSS = (
    """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;
max-width:1200px;padding:1rem 2rem;color:#222}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
nav a{margin-right:1rem} .meta{color:#555}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.6rem 1rem;font-weight:600;
margin:1rem 0;font-size:1.1rem}
.missing{color:#9a3412;font-style:italic}
table.comparison,table.plain{border-collapse:collapse;margin:.5rem 0}
table.comparison td,table.comparison th,table.plain td,table.plain th{border:1px solid #ccc;
padding:.3rem .6rem;text-align:right}
table.comparison td:first-child,table.plain td:first-child{text-align:left}
table.comparison caption{font-weight:600;text-align:left;padding:.3rem 0}
tr.delta-m{font-weight:600;background:#f6f6f6} .notes{color:#444;font-size:.92rem}
table.comparison,table.plain{display:block;overflow-x:auto;max-width:100%}
body{overflow-wrap:anywhere} td,th{overflow-wrap:normal}
.figure{margin:1rem 0;min-width:0;overflow-x:auto}
.figure>div{min-width:620px} .grid .figure>div{min-width:360px}
.figure-title{font-weight:600;margin:.3rem 0}
.figure-title sup{font-weight:400;vertical-align:baseline;font-size:.85em}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.grid .figure{flex:1 1 380px;max-width:600px;min-width:0}
.verdict{border:2px solid #2b6cb0;border-radius:6px;padding:.4rem 1rem;background:#f5f9ff}
.verdict-space h3{margin:.6rem 0 .2rem} .params{font-family:monospace;margin:.2rem 0;
overflow-wrap:anywhere}
.caution{background:#fff3cd;border-left:4px solid #e0a800;padding:.3rem .6rem}
@media (max-width:600px){body{padding:.5rem .6rem} nav a{display:inline-block}}
"""
    + html_table.CSS
)
RELOAD = """<script>(function(){var k='mtl-report-scroll';
var y=sessionStorage.getItem(k);if(y!==null)window.addEventListener('load',function(){
window.scrollTo(0,parseFloat(y));});
setTimeout(function(){sessionStorage.setItem(k,String(window.scrollY));location.reload();},
RELOAD_MS);})();</script>"""


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure part: shown in its section and also written alone as `<name>.html`."""

    name: str  # also the div id ("fig-<name>") and the standalone file's stem
    figure: go.Figure


Part = str | Figure  # an HTML fragment, or a figure


@dataclasses.dataclass
class Section:
    id: str
    title: str
    parts: list[Part] = dataclasses.field(default_factory=list)


TITLE_TAGS = ("<br>", "<sup>", "</sup>", "<b>", "</b>", "<i>", "</i>")  # plotly's, kept


def _title_html(text: str) -> str:
    """A plotly title as HTML: escaped, then the few tags plotly titles use put back."""
    out = html.escape(text, quote=False)
    for tag in TITLE_TAGS:
        out = out.replace(html.escape(tag, quote=False), tag)
    return out


def _part_html(part: Part) -> str:
    """A string as it is; a figure with its title above it as HTML (it wraps on a narrow
    screen, where a plotly title is cut off)."""
    if isinstance(part, str):
        return part
    fig = go.Figure(part.figure)
    title = fig.layout.title.text or ""
    if title:
        fig.update_layout(title_text="", margin_t=30)
        title = f'<p class="figure-title">{_title_html(title)}</p>'
    inner = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{part.name}",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="figure" data-figure="{html.escape(part.name)}">{title}{inner}</div>'


def render_html(study: Study, sections: Sequence[Section], reload_s: float | None = None) -> str:
    """The report page, with plotly.js inlined once in the head; with `reload_s` (watch mode)
    the page reloads itself that often, keeping its scroll position."""
    from plotly.offline import get_plotlyjs

    name = html.escape(str(study.settings.get("name", study.path.name)))
    synthetic = study.synthetic
    title = f"Study {name}" + (" — SYNTHETIC DATA" if synthetic else "")
    banner = (
        '<div class="banner synthetic" id="synthetic-banner">Synthetic data: this study trained '
        "on built-in synthetic stand-ins, not the real datasets. Its accuracies say nothing "
        "about real performance.</div>"
        if synthetic
        else ""
    )
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>'
        f"{''.join(map(_part_html, s.parts))}</section>"
        for s in sections
    )
    made = time.strftime("%Y-%m-%d %H:%M:%S")
    reload = RELOAD.replace("RELOAD_MS", str(int(reload_s * 1000))) if reload_s else ""
    watching = (
        f" — watching: rewritten as results arrive, this page reloads every {reload_s:g} s"
        if reload_s
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f'<h1>{title}</h1><p class="meta">report made {made} from {html.escape(study.path.name)}'
        f"{watching}</p>{banner}<nav>{nav}</nav>{body}{html_table.SCRIPT}{reload}</body></html>\n"
    )
