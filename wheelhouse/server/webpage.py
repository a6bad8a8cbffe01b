"""The web page's HTML: server-rendered, no JavaScript, one stylesheet inline; readable on a
laptop and a phone (the matrix scrolls sideways on its own, the page never does).

``/`` is one matrix: a row per pin (project == version), a column per target the store
serves, the failed pins first, each followed by its failures' cause lines and log links.
``/project/<name>/`` has the project's versions, files and failures in full."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import quote

import jinja2
from packaging.utils import canonicalize_name

from wheelhouse.ledger import Failure
from wheelhouse.simple.render import file_href
from wheelhouse.store.model import StoredFile

_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --bg: #fff; --soft: #f6f8fa; --built: #1a7f37; --upstream: #0969da; --uploaded: #8250df;
  --failed: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1;
  --line: #3d444d; --bg: #0d1117; --soft: #151b23; --built: #3fb950; --upstream: #4493f8;
  --uploaded: #ab7df8; --failed: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 16px/1.5 system-ui, sans-serif;
  color: var(--fg); background: var(--bg); overflow-wrap: anywhere; }
a { color: var(--upstream); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: baseline; }
header h1 { margin: 0; font-size: 1.5rem; }
header h1 a { color: inherit; text-decoration: none; }
.muted { color: var(--muted); }
form.search { display: flex; gap: .5rem; margin: 1rem 0; }
form.search input { flex: 1; min-width: 0; font: inherit; padding: .4rem .6rem;
  border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: inherit; }
form.search button { font: inherit; padding: .4rem .9rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--soft); color: inherit; }
details.use { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .8rem;
  background: var(--soft); }
details.use summary { cursor: pointer; }
pre { overflow-x: auto; padding: .6rem .8rem; border-radius: 6px; background: var(--soft);
  border: 1px solid var(--line); font-size: .85rem; }
code { font-size: .9em; }
section.project { margin: 1.5rem 0; }
section.project h2 { font-size: 1.2rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
tr:last-child > * { border-bottom: 0; }
thead th { background: var(--soft); font-weight: 600; white-space: nowrap; }
thead th span { display: block; font-weight: 400; color: var(--muted); font-size: .8rem; }
th[scope=row] { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
table.matrix { table-layout: fixed; min-width: calc(8rem + var(--columns) * 11rem); }
table.matrix th:first-child { width: 8rem; }
table.pins { min-width: calc(14rem + var(--columns) * 11rem); }
table.pins th:first-child { width: 14rem; }
th[scope=row] .version { display: block; font-weight: 400; color: var(--muted); }
tr.failed th[scope=row] { border-left: 3px solid var(--failed); }
tr.causes td { padding-top: 0; font-size: .85rem; }
tr.causes p { margin: .1rem 0; }
tr.causes code { font-size: .8rem; }
td.cell { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem;
  font-weight: 600; border: 1px solid currentColor; text-decoration: none; }
.badge.built { color: var(--built); } .badge.upstream { color: var(--upstream); }
.badge.uploaded { color: var(--uploaded); } .badge.failed { color: var(--failed); }
.badge.none { color: var(--muted); border-color: transparent; font-weight: 400; }
a.aux { font-size: .75rem; margin-left: .3rem; }
.badge, a.aux { white-space: nowrap; overflow-wrap: normal; }
table.files td:last-child { overflow-wrap: normal; }
.badge.file { white-space: normal; overflow-wrap: anywhere; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1rem; font-size: .85rem; margin: .5rem 0; }
.failure { border-left: 3px solid var(--failed); padding: .1rem .8rem; margin: .8rem 0; }
.failure pre { margin: .3rem 0; }
td.hash { font-family: ui-monospace, monospace; font-size: .8rem; }
td.name { overflow-wrap: anywhere; min-width: 12rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip-path: inset(50%); white-space: nowrap; }
summary code { word-break: break-all; }
/* A phone: each version becomes a card listing its targets, so nothing hides off-screen. */
@media (max-width: 40rem) { body { padding: .6rem; font-size: 15px; }
  .hide-narrow { display: none; }
  table.matrix { min-width: 0; table-layout: auto; }
  table.matrix thead { display: none; }
  table.matrix tr { display: block; border-bottom: 1px solid var(--line); }
  table.matrix tr:last-child { border-bottom: 0; }
  table.matrix th[scope=row] { display: block; width: auto; border: 0;
    padding-bottom: 0; }
  table.matrix td { display: flex; gap: .3rem; align-items: baseline; border: 0;
    padding: .15rem .5rem; }
  table.matrix td.cell::before { content: attr(data-target); color: var(--muted);
    font-size: .8rem; margin-right: auto; }
  table.matrix tr.causes td { display: block; padding: .2rem .5rem .5rem; }
  table.matrix td.files { display: block; }
  td.name { min-width: 0; } }
"""

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}wheelhouse{% endblock %}</title>
<style>{{ css|safe }}</style></head>
<body>
<header><h1><a href="{{ root }}">wheelhouse</a></h1>
<span class="muted">{{ plural(matrix.projects|length, "project") }},
{{ plural(matrix.file_count, "file") }}, {{ plural(matrix.failure_count, "failed build") }}</span>
</header>
<form class="search" method="get" action="{{ root }}" role="search">
<label class="visually-hidden" for="q">Search projects</label>
<input id="q" type="search" name="q" value="{{ query }}" placeholder="project name"
 autocomplete="off">
<button type="submit">Search</button></form>
{% block body %}{% endblock %}
</body></html>
"""

_MACROS = """
{% macro target_head(t) -%}
{%- set py, _, platform = t.partition("-") -%}{{ py }}<span>{{ platform }}</span>
{%- endmacro %}
{% macro cell(c, t) -%}
<td class="cell" data-target="{{ t }}" data-state="{{ c.state }}">
{%- if c.file -%}
<a class="badge {{ c.state }}" href="{{ file_url(c.file) }}" title="{{ c.file.filename }}">
{{- c.state }}</a>
{%- if c.file.provenance.get("log") -%}
<a class="aux" href="{{ log_url(c.file.provenance["log"]) }}">log</a>{% endif -%}
{%- if c.state == "built" %}<a class="aux" href="{{ provenance_url(c.file) }}">provenance</a>
{%- endif %}
{%- elif c.failure -%}
<a class="badge failed" href="{{ project_url(c.failure.project) }}#{{ failure_id(c.failure) }}"
 title="{{ ([c.failure.message] + c.failure.cause[:1]|list)|join(': ') }}">failed</a>
{%- if c.failure.log -%}
<a class="aux" href="{{ log_url(c.failure.log) }}">log</a>{% endif -%}
{%- else -%}<span class="badge none" title="no wheel for {{ t }}">&ndash;</span>{%- endif -%}
</td>
{%- endmacro %}
{% macro pin_matrix(rows, targets) -%}
<div class="scroll"><table class="matrix pins" style="--columns: {{ [targets|length, 1]|max }}">
<thead><tr><th scope="col">pin</th>
{%- for t in targets %}<th scope="col">{{ target_head(t) }}</th>{% endfor -%}
{%- if not targets %}<th scope="col">files</th>{% endif %}</tr></thead>
<tbody>
{%- for r in rows %}<tr data-project="{{ r.project }}" data-version="{{ r.row.version }}"
{%- if r.failed %} class="failed"{% endif %}>
<th scope="row"><a href="{{ project_url(r.project) }}">{{ r.project }}</a>
<span class="version">=={{ r.row.version }}</span></th>
{%- for c in r.row.cells %}{{ cell(c, targets[loop.index0]) }}{% endfor -%}
{%- if not targets %}{{ files_cell(r.row) }}{% endif %}</tr>
{%- if r.row.failures %}
<tr class="causes" data-project="{{ r.project }}"><td colspan="{{ [targets|length, 1]|max + 1 }}">
{%- for f in r.row.failures %}
<p class="cause"><code>{{ f.target }}</code>: {{ (f.cause|list or [f.message])[0] }}
{%- if f.log %} <a href="{{ log_url(f.log) }}">log</a>{% endif %}
<a class="aux" href="{{ project_url(f.project) }}#{{ failure_id(f) }}">details</a></p>
{%- endfor %}</td></tr>
{%- endif %}
{%- endfor %}
</tbody></table></div>
{%- endmacro %}
{% macro files_cell(v) -%}
<td class="files">{% for f in v.files %}<a class="badge file {{ f.origin.value }}"
 href="{{ file_url(f) }}">{{ f.filename }}</a> {% endfor %}</td>
{%- endmacro %}
{% macro project_matrix(p, targets) -%}
<div class="scroll"><table class="matrix" data-project="{{ p.name }}"
 style="--columns: {{ [targets|length, 1]|max }}">
<thead><tr><th scope="col">version</th>
{%- for t in targets %}<th scope="col">{{ target_head(t) }}</th>{% endfor -%}
{%- if not targets %}<th scope="col">files</th>{% endif %}</tr></thead>
<tbody>
{%- for v in p.versions %}<tr><th scope="row">{{ v.version }}</th>
{%- for c in v.cells %}{{ cell(c, targets[loop.index0]) }}{% endfor -%}
{%- if not targets %}{{ files_cell(v) }}{% endif %}</tr>
{%- endfor %}
</tbody></table></div>
{%- endmacro %}
"""

_INDEX = """{% extends "base" %}{% import "macros" as m with context %}
{% block body %}
<details class="use"{% if not matrix.projects %} open{% endif %}>
<summary>Use this index with pip or uv: <code>--index-url {{ index_url }}</code></summary>
{%- if read_protected %}
<p>Reading needs a token: put it in the URL as the password of user <code>__token__</code>,
e.g. <code>{{ index_url.replace("://", "://__token__:TOKEN@", 1) }}</code>.</p>
{%- endif %}
<pre>pip install --only-binary :all: --index-url {{ index_url }} -r requirements.txt
uv pip install --only-binary :all: --index-url {{ index_url }} -r requirements.txt</pre>
<p>In a Dockerfile:</p>
<pre>RUN pip install --only-binary :all: --index-url {{ index_url }} -r requirements.txt</pre>
<p>For uv projects, in <code>pyproject.toml</code> (or <code>uv.toml</code> without the
<code>tool.uv</code> prefix):</p>
<pre>[[tool.uv.index]]
name = "wheelhouse"
url = "{{ index_url }}"
default = true</pre>
<p>For pip everywhere, in <code>pip.conf</code>, or <code>PIP_INDEX_URL={{ index_url }}</code>:</p>
<pre>[global]
index-url = {{ index_url }}
only-binary = :all:</pre>
<p>Without an index: <code>pip install --no-index --find-links {{ links_url }} ...</code></p>
</details>
<div class="legend" aria-label="legend">
<span><span class="badge built">built</span> built here from the sdist</span>
<span><span class="badge upstream">upstream</span> fetched from the upstream index</span>
<span><span class="badge uploaded">uploaded</span> uploaded by another runner</span>
<span><span class="badge failed">failed</span> the build failed: its log says why</span>
</div>
{%- if query %}<p>{{ plural(shown|length, "project") }} matching <strong>{{ query }}</strong>.
<a href="{{ root }}">Show all</a></p>{% endif %}
{%- if not matrix.projects %}<p>The store is empty: run <code>wheelhouse build
requirements.txt</code> to fill it.</p>{% endif %}
{%- set rows = matrix.pins(shown) %}
{%- if rows %}
{%- set failed = rows|selectattr("failed")|list|length %}
{%- if failed %}<p><strong>{{ plural(failed, "pin") }} with failed builds</strong>, listed
first with the cause each log gives.</p>{% endif %}
{{ m.pin_matrix(rows[:limit], matrix.targets) }}
{%- endif %}
{%- if rows|length > limit %}<p class="muted">{{ limit }} of {{ rows|length }} pins
shown: search to narrow the list.</p>{% endif %}
{% endblock %}
"""

_PROJECT = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}{{ project.name }} · wheelhouse{% endblock %}
{% block body %}
<section class="project" id="{{ project.name }}">
<h2>{{ project.name }} <a class="aux" href="{{ simple_url }}">simple page</a></h2>
{{ m.project_matrix(project, matrix.targets) }}
</section>
{%- if project.versions|map(attribute="files")|map("length")|sum %}
<h3>Files</h3>
<div class="scroll"><table class="files"><thead><tr><th>file</th><th>from</th>
<th class="hide-narrow">size</th><th class="hide-narrow">uploaded</th>
<th class="hide-narrow">sha256</th><th></th></tr></thead><tbody>
{%- for v in project.versions %}{% for f in v.files %}
<tr><td class="name"><a href="{{ file_url(f) }}">{{ f.filename }}</a></td>
<td><span class="badge {{ f.origin.value }}">{{ f.origin.value }}</span></td>
<td class="hide-narrow">{{ "{:,}".format(f.size) }}</td>
<td class="hide-narrow">{{ f.upload_time[:16].replace("T", " ") }}</td>
<td class="hash hide-narrow" title="{{ f.sha256 }}">{{ f.sha256[:12] }}</td>
<td>{% if f.provenance.get("log") %}<a href="{{ log_url(f.provenance["log"]) }}">log</a>
{% endif %}<a href="{{ provenance_url(f) }}">provenance</a></td></tr>
{%- endfor %}{% endfor %}
</tbody></table></div>
{%- endif %}
{%- if project.failures %}
<h3 id="failures">Failed builds</h3>
{%- for f in project.failures %}
<div class="failure" id="{{ failure_id(f) }}" data-target="{{ f.target }}">
<p><strong>{{ f.version }}</strong> for
<code>{{ f.target }}</code>: {{ f.message }}
<span class="muted">({{ f.time[:16].replace("T", " ") }})</span></p>
{%- if f.cause %}<pre>{{ f.cause|join("\n") }}</pre>{% endif %}
{%- if f.hint %}<p>Hint: {{ f.hint }}</p>{% endif %}
{%- if f.log %}<p><a href="{{ log_url(f.log) }}">Build log</a></p>{% endif %}
</div>
{%- endfor %}{% endif %}
{% endblock %}
"""


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"base": _BASE, "macros": _MACROS, "index": _INDEX,
                                  "project": _PROJECT}),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"


def render(template: str, *, root: str, **context: Any) -> str:
    """``root``: the app's URL path with a trailing slash; every link is made under it."""

    def file_url(f: StoredFile) -> str:
        return file_href(f, f"{root}files/")

    def provenance_url(f: StoredFile) -> str:
        return f"{root}provenance/{quote(f.project, safe='')}/{quote(f.filename, safe='')}"

    def log_url(relative: str) -> str:
        # Logs are recorded relative to the store root as logs/…, which is also their URL.
        return root + quote(relative, safe="/")

    def project_url(name: str) -> str:
        return f"{root}project/{quote(canonicalize_name(name), safe='')}/"

    return _environment().get_template(template).render(
        css=_CSS, root=root, plural=_plural, file_url=file_url, provenance_url=provenance_url,
        log_url=log_url, project_url=project_url, failure_id=failure_id, **context,
    )


def failure_id(f: Failure) -> str:
    """The anchor of a failure on its project's page."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"failed-{f.version}-{f.target}")
