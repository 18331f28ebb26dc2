"""HTML of the review pages, rendered on the server; every value from the database goes through ``esc``."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from .data import Filters

#: Below this a confidence shows red, below GOOD amber.
LOW, GOOD = 0.5, 0.8

CSS = """
body{font:14px system-ui,sans-serif;margin:0;color:#222}header{padding:8px 14px;background:#234;color:#fff}
header a{color:#fff}main{padding:10px 14px}table{border-collapse:collapse}td,th{padding:3px 8px;
border-bottom:1px solid #ddd;text-align:left;vertical-align:top}tr.sel{background:#eef}
.conf{display:inline-block;min-width:34px;padding:1px 4px;border-radius:3px;color:#fff;text-align:center}
.low{background:#c0392b}.mid{background:#d68910}.good{background:#1e8449}.ro{color:#c0392b;font-weight:600}
.wrap{display:flex;gap:16px;align-items:flex-start}.pages{flex:1 1 60%;max-width:900px}
.fields{flex:1 1 40%;position:sticky;top:0;max-height:100vh;overflow:auto}
.page{position:relative;margin-bottom:12px;border:1px solid #999}.page img{width:100%;display:block}
.box{position:absolute;border:2px solid rgba(41,128,185,.85);background:rgba(41,128,185,.08);cursor:pointer}
.box span{position:absolute;left:0;top:-15px;font-size:10px;background:rgba(41,128,185,.9);color:#fff;
padding:0 3px;white-space:nowrap}.box.low{border-color:#c0392b;background:rgba(192,57,43,.1)}
.box.hl{border:3px solid #f1c40f;background:rgba(241,196,15,.25);z-index:5}
input.val{width:95%;font:inherit}tr.focus{background:#fff7d6}.fail{color:#c0392b}.pass{color:#1e8449}
.msg{margin-left:8px;font-size:12px}kbd{border:1px solid #aaa;border-radius:3px;padding:0 3px}
"""


def esc(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def _conf(c: Any) -> str:
    if c is None:
        return ""
    cls = "low" if c < LOW else "mid" if c < GOOD else "good"
    return f'<span class="conf {cls}">{c:.2f}</span>'


def _shell(title: str, body: str, read_only: bool, script: str = "") -> str:
    ro = ' · <span class="ro">read-only: corrections are not saved</span>' if read_only else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><header><a href='/'>docpipe review</a>{ro}</header>"
            f"<main>{body}</main>{script}</body></html>")


def message_html(text: str) -> str:
    return _shell("docpipe review", f"<p>{esc(text)}</p>", False)


def index_html(docs: list[dict[str, Any]], f: Filters, schemas: list[str], engines: list[str], read_only: bool,
               query: str) -> str:
    def opts(values: list[str], cur: str) -> str:
        return "<option value=''>any</option>" + "".join(
            f"<option{' selected' if v == cur else ''}>{esc(v)}</option>" for v in values)

    form = (f"<form method='get' id='filters'>search <input name='q' value='{esc(f.q)}'> "
            f"schema <select name='schema'>{opts(schemas, f.schema)}</select> "
            f"engine <select name='engine'>{opts(engines, f.engine)}</select> "
            f"<label><input type='checkbox' name='review' value='1'{' checked' if f.review else ''}> "
            f"needs review only</label> <button>filter</button></form>"
            f"<p>{len(docs)} documents · <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> open</p>")
    rows = []
    for d in docs:
        href = f"/doc/{quote(d['doc_id'])}?as={quote(d['schema_name'])}" + (f"&{query}" if query else "")
        rows.append(f"<tr class='doc'><td><a href='{esc(href)}'>{esc(d['path'])}</a></td>"
                    f"<td>{esc(d['schema_name'])}</td><td>{esc(d['engine'])}</td><td>{_conf(d['min_conf'])}</td>"
                    f"<td>{esc(d['why'] or '')}</td></tr>")
    table = ("<table id='docs'><tr><th>document</th><th>schema</th><th>engine</th><th>lowest</th>"
             f"<th>needs review because</th></tr>{''.join(rows)}</table>")
    script = """<script>
let rows=[...document.querySelectorAll('tr.doc')],i=-1;
function sel(n){if(!rows.length)return;rows.forEach(r=>r.classList.remove('sel'));
i=Math.max(0,Math.min(rows.length-1,n));
rows[i].classList.add('sel');rows[i].scrollIntoView({block:'nearest'});}
document.addEventListener('keydown',e=>{if(e.target.tagName==='INPUT'||e.target.tagName==='SELECT')return;
if(e.key==='j'||e.key==='ArrowDown'){sel(i+1);e.preventDefault();}
else if(e.key==='k'||e.key==='ArrowUp'){sel(i-1);e.preventDefault();}
else if(e.key==='Enter'&&i>=0){rows[i].querySelector('a').click();}});
</script>"""
    return _shell("docpipe review", form + table, read_only, script)


def doc_html(doc: dict[str, Any], schema: str, pages: list[dict[str, Any]], evidence: list[dict[str, Any]],
             checks: list[dict[str, Any]], token: str, read_only: bool, query: str,
             prev_key: tuple[str, str] | None, next_key: tuple[str, str] | None, pos: int, total: int) -> str:
    def link(key: tuple[str, str] | None, label: str, rel: str) -> str:
        if key is None:
            return f"<span>{label}</span>"
        href = f"/doc/{quote(key[0])}?as={quote(key[1])}" + (f"&{query}" if query else "")
        return f"<a id='{rel}' href='{esc(href)}'>{label}</a>"

    nav = (f"<p>{link(prev_key, '&larr; previous', 'prev')} · {pos} of {total} · "
           f"{link(next_key, 'next &rarr;', 'next')} · <a href='/?{esc(query)}'>list</a> · "
           "<kbd>j</kbd>/<kbd>k</kbd> next/previous document, <kbd>Tab</kbd> next field, "
           "<kbd>Enter</kbd> save a correction</p>"
           f"<h3>{esc(doc['path'])} <small>({esc(schema)})</small></h3>")
    by_page: dict[int, list[str]] = {}
    for i, e in enumerate(evidence):
        if e["page"] is None or e["nx0"] is None:
            continue
        low = " low" if (e["confidence"] or 0) < LOW else ""
        style = (f"left:{e['nx0'] * 100:.3f}%;top:{e['ny0'] * 100:.3f}%;width:{(e['nx1'] - e['nx0']) * 100:.3f}%;"
                 f"height:{(e['ny1'] - e['ny0']) * 100:.3f}%")
        by_page.setdefault(e["page"], []).append(
            f"<div class='box{low}' id='box-{i}' data-field='{esc(e['field'])}' style='{style}' "
            f"title='{esc(e['field'])}: {esc(e['text'])}'><span>{esc(e['field'])} {e['confidence']:.2f}</span></div>")
    imgs = "".join(
        f"<div class='page' data-page='{p['page_no']}'><img alt='page {p['page_no']}' "
        f"src='/page/{quote(doc['doc_id'])}/{p['page_no']}.png'>{''.join(by_page.get(p['page_no'], []))}</div>"
        for p in pages)
    frows = []
    for i, e in enumerate(evidence):
        shown = e["corrected"] if e["corrected"] is not None else e["value"]
        was = f"<br><small>was {esc(e['value'])}</small>" if e["corrected"] is not None else ""
        where = f"p{e['page']}" if e["page"] else "not on the page"
        frows.append(
            f"<tr data-box='box-{i}' data-field='{esc(e['field'])}'><td>{esc(e['field'])}</td>"
            f"<td><input class='val' data-field='{esc(e['field'])}' data-box='box-{i}' value='{esc(shown)}'"
            f"{' readonly' if read_only else ''}>{was}<span class='msg'></span></td><td>{_conf(e['confidence'])}</td>"
            f"<td>{esc(e['source'])} · {esc(where)}<br><small>{esc(e['note'] or '')}</small></td></tr>")
    crow = "".join(f"<li class='{'pass' if c['passed'] else 'fail'}'>{'✓' if c['passed'] else '✗'} "
                   f"{esc(c['check'])}: {esc(c['detail'])}</li>" for c in checks)
    fields = (f"<table id='fields'><tr><th>field</th><th>value</th><th>conf.</th><th>source</th></tr>{''.join(frows)}"
              f"</table><h4>checks</h4><ul id='checks'>{crow or '<li>none ran</li>'}</ul>")
    cfg = json.dumps({"doc_id": doc["doc_id"], "token": token, "read_only": read_only})
    script = f"<script>const CFG={cfg};</script><script>{_DOC_JS}</script>"
    body = nav + f"<div class='wrap'><div class='pages'>{imgs}</div><div class='fields'>{fields}</div></div>"
    return _shell(f"review {doc['path']}", body, read_only, script)


_DOC_JS = """
function hl(id,on){const b=document.getElementById(id);if(b){b.classList.toggle('hl',on);
if(on)b.scrollIntoView({block:'nearest'});}}
document.querySelectorAll('input.val').forEach(inp=>{
 const row=inp.closest('tr');
 inp.addEventListener('focus',()=>{hl(inp.dataset.box,true);row.classList.add('focus');});
 inp.addEventListener('blur',()=>{hl(inp.dataset.box,false);row.classList.remove('focus');});
 inp.addEventListener('keydown',async e=>{if(e.key!=='Enter')return;e.preventDefault();
  const msg=row.querySelector('.msg');
  if(CFG.read_only){msg.textContent='read-only: not saved';return;}
  const r=await fetch('/correct',{method:'POST',headers:{'Content-Type':'application/json','X-Docpipe-Token':CFG.token},
   body:JSON.stringify({doc_id:CFG.doc_id,field:inp.dataset.field,value:inp.value})});
  const j=await r.json();msg.textContent=r.ok?'saved':('not saved: '+j.error);
  msg.className='msg '+(r.ok?'pass':'fail');});
});
document.querySelectorAll('.box').forEach(b=>b.addEventListener('click',()=>{
 const inp=document.querySelector(`input.val[data-box="${b.id}"]`);if(inp)inp.focus();}));
document.addEventListener('keydown',e=>{if(e.target.tagName==='INPUT')return;
 if(e.key==='j'||e.key==='ArrowRight'){const a=document.getElementById('next');if(a)a.click();}
 else if(e.key==='k'||e.key==='ArrowLeft'){const a=document.getElementById('prev');if(a)a.click();}});
"""
