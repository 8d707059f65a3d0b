"""HTML for views and pages: circuitsvis inlined offline, escaping, one page style.

Views never touch the network. circuitsvis's own ``render`` probes ``google.com`` to choose
between its CDN and local HTML, so it is never called here: the bundle shipped in the
circuitsvis wheel (``dist/cdn/iife.js``) is inlined as one classic ``<script>`` that defines
the global ``CircuitsVis``, and each component is mounted by a few lines that call
``CircuitsVis.render``. An HTML page (``html_page``) carries the bundle once for any number of
views; a ``View`` shown alone in Jupyter (``_repr_html_``) carries its own copy.

Words from the data end up in HTML in two ways, both escaped: as text of this module's own
tags (``html.escape``), and as circuitsvis tokens, which circuitsvis writes with
``innerHTML`` and therefore receive HTML-escaped; every JSON payload inside a ``<script>``
has ``<``, ``>`` and ``&`` written as ``\\u003c``-style escapes, so no ``</script>`` or
``<!--`` can appear in it.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import circuitsvis
from matplotlib.figure import Figure

from lens_relearn.errors import LensRelearnError

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
       color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9rem; }
"""


VIEW_STYLE = """
.neuron-view { border-top: 2px solid #ddd; margin: 1.5rem 0; padding-top: 0.5rem; }
.neuron-view td { vertical-align: top; }
.neuron-view .examples td { min-width: 12rem; }
.neuron-view .note { color: #555; font-size: 0.85rem; }
.neuron-view .token { display: inline-block; margin: 0 0.3rem 0.2rem 0; padding: 0 0.2rem; background: #f3f3f3; }
.neuron-view .token.concept { background: #ffe0a0; font-weight: 600; }
.neuron-view .token.new { outline: 2px solid #c33; }
.neuron-view .composition { display: flex; width: 24rem; height: 0.9rem; background: #eee; }
.neuron-view .composition .share { display: block; height: 100%; }
.neuron-view .swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.2rem 0 0.6rem;
                       vertical-align: middle; }
"""


# The page needs nothing from outside itself: the browser refuses any request it might try.
PAGE_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


@functools.cache
def circuitsvis_script() -> str:
    """The circuitsvis bundle from its installed wheel, as one inline ``<script>`` element.

    The bundle defines the global ``CircuitsVis`` (its components and ``render``). Its only
    ``</`` (and any ``<!--``) sequences lie inside JavaScript string literals, where ``<\\/``
    (``<\\!--``) means the same, so writing them that way keeps the element from ending early;
    the source-map comment goes.

    Returns:
        ``<script>...</script>``, about 1.3 MB.
    """
    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    if not path.is_file():
        raise LensRelearnError(f"The circuitsvis bundle {path} is missing; reinstall circuitsvis.")
    source = path.read_text(encoding="utf-8")
    source = "\n".join(line for line in source.splitlines() if not line.startswith("//# sourceMappingURL="))
    return "<script>" + source.replace("</", "<\\/").replace("<!--", "<\\!--") + "</script>"


def _script_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` characters)."""
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _mount(component: str, props: Mapping[str, object]) -> str:
    """A ``<div>`` and the script that renders a circuitsvis component into it."""
    target = f"lens-relearn-{uuid.uuid4().hex[:12]}"
    return (
        f'<div class="circuitsvis" id="{target}"></div>'
        f'<script>CircuitsVis.render("{target}", CircuitsVis.{component}, {_script_json(props)});</script>'
    )


@dataclass(frozen=True, repr=False)
class View:
    """HTML holding circuitsvis components; shows itself in Jupyter through ``_repr_html_``.

    Attributes:
        title: What the view shows.
        body: The HTML, without the circuitsvis bundle (a page must carry it once).
    """

    title: str
    body: str

    def __repr__(self) -> str:
        return f"View({self.title!r}, {self.body.count('CircuitsVis.render(')} circuitsvis components)"

    def _repr_html_(self) -> str:
        return f"<style>{VIEW_STYLE}</style>{circuitsvis_script()}{self.body}"

    def save(self, path: str | Path) -> Path:
        """Write the view as a self-contained HTML page and return its path."""
        path = Path(path)
        path.write_text(html_page(self.title, self.body), encoding="utf-8")
        return path


def html_page(title: str, body: str) -> str:
    """A complete HTML page around ``body``, with the circuitsvis bundle once and no outside address.

    Args:
        title: The page title (escaped here).
        body: The page's HTML (already escaped), e.g. the ``body`` of several views.

    Returns:
        The page; it loads nothing from outside itself (its content security policy forbids it).
    """
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_POLICY}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_STYLE}{VIEW_STYLE}</style>\n"
        f"{circuitsvis_script()}\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def html_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; floats get three decimals (NaN and None a dash), everything is escaped.

    Example:
        >>> html_table(["a", "b"], [("<x>", 0.5)])
        '<table><tr><th>a</th><th>b</th></tr><tr><td>&lt;x&gt;</td><td class="number">0.500</td></tr></table>'
    """

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return '<td class="number">–</td>'
        if isinstance(value, float):
            return f'<td class="number">{value:.3f}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(f"<tr>{''.join(cell(v) for v in row)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure_html(figure: Figure, caption: str) -> str:
    """A matplotlib figure as an inline PNG with its caption."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode()
    text = html.escape(caption)
    return f'<figure><img alt="{text}" src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>'
