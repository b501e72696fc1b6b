"""A plain HTML table that sorts by a click on a header and filters by a text box, for the
report's trials table: every row is in the page (no virtual scrolling, nothing cut), wrapped in
a horizontally scrolling box so it reads from 480 px up.

The behaviour is `SCRIPT`, a few lines of inline JavaScript shared by every such table of the
page (no CDN, no external file). A column sorts as numbers when every cell of it is one
("80.6%", "3/3", "1.00e-03"), else as text: a trial id such as "12345678" or "1e345678" among
others stays text. Blank cells sort last either way.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

CSS = """
.scroll{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch}
table.sortable{border-collapse:collapse;font-size:.9rem}
table.sortable th,table.sortable td{border:1px solid #ccc;padding:.25rem .5rem;
white-space:nowrap;text-align:left}
table.sortable th{background:#e8eef7;cursor:pointer;position:sticky;top:0}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
table.sortable tbody tr:nth-child(even){background:#fafafa}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em;
vertical-align:middle}
.table-filter{margin:.4rem 0;padding:.3rem;width:18rem;max-width:100%;box-sizing:border-box}
"""

SCRIPT = """<script>(function(){
var NUM=/^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?(%|\\/\\d+)?$/i;
document.querySelectorAll('table.sortable').forEach(function(t){
 var body=t.tBodies[0],heads=t.tHead.rows[0].cells;
 Array.prototype.forEach.call(heads,function(th,i){th.addEventListener('click',function(){
  var asc=th.getAttribute('aria-sort')!=='ascending';
  Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  var rows=Array.prototype.map.call(body.rows,function(r){
   return [r.cells[i].textContent.trim(),r];});
  var num=rows.every(function(p){return p[0]===''||NUM.test(p[0]);});
  rows.forEach(function(p){p[0]=p[0]===''?null:num?parseFloat(p[0]):p[0].toLowerCase();});
  rows.sort(function(a,b){var x=a[0],y=b[0];
   if(x===null||y===null)return x===null?(y===null?0:1):-1;
   var k=x<y?-1:x>y?1:0;return asc?k:-k;});
  rows.forEach(function(p){body.appendChild(p[1]);});});});
 var box=document.querySelector('input[data-filter="'+t.id+'"]');
 var count=document.querySelector('[data-count="'+t.id+'"]');
 if(box)box.addEventListener('input',function(){var q=box.value.toLowerCase(),n=0;
  Array.prototype.forEach.call(body.rows,function(r){
   var ok=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=ok?'':'none';n+=ok;});
  if(count)count.textContent=n+' of '+body.rows.length+' rows';});
});})();</script>"""


def sortable_table(
    data: pd.DataFrame, table_id: str, swatches: Mapping[int, str] | None = None
) -> str:
    """`data` (display strings) as a sortable, filterable HTML table with id `table_id`;
    `swatches` maps a row position to a colour shown as a dot in the row's first cell."""
    swatches = swatches or {}
    head = "".join(f'<th scope="col">{html.escape(str(c))}</th>' for c in data.columns)
    rows = []
    for i, values in enumerate(data.itertuples(index=False)):
        cells = [html.escape("" if v is None else str(v)) for v in values]
        if i in swatches and cells:
            dot = f'<span class="swatch" style="background:{html.escape(swatches[i])}"></span>'
            cells[0] = dot + cells[0]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    n = len(data)
    return (
        f'<input type="search" class="table-filter" data-filter="{table_id}" '
        f'placeholder="filter rows (any text)" aria-label="filter the table">'
        f' <span class="meta" data-count="{table_id}">{n} of {n} rows</span>'
        f'<div class="scroll"><table class="sortable" id="{table_id}" data-rows="{n}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
