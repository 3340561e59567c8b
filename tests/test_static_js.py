"""No script builds HTML from data, and no template carries script the Content-Security-Policy would block.

A metric named ``<img src=x onerror=...>`` once ran on a teammate's page because explore.js put the
name in ``innerHTML``. Scripts put what comes from a folder or a user on the page as text
(``textContent``, ``createElement``); fragments the server rendered go through one helper
(``Gymnos.swapFragment`` in poll.js). Templates hand data to scripts through ``json_script`` or
``data-`` attributes, and wire behaviour in static/js, never with ``on*=``. These tests read every
file, so a new script or template cannot bring the old ways back.
"""

import re

import pytest

from tests.helpers import ROOT

SCRIPTS = sorted((ROOT / "static" / "js").glob("**/*.js"))
TEMPLATES = sorted((ROOT / "templates").glob("**/*.html"))

# What turns a string into markup or code in a browser.
HTML_SINKS = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|\binsertAdjacentHTML\b|\bdocument\.write(?:ln)?\b|\bcreateContextualFragment\b"
    r"|\.srcdoc\b|\bsetHTMLUnsafe\b|\bparseHTMLUnsafe\b"
)
CODE_SINKS = re.compile(r"\beval\s*\(|\bnew\s+Function\b|\bset(?:Timeout|Interval)\s*\(\s*[\"'`]|javascript:")
PARSERS = re.compile(r"\bDOMParser\b|\bparseFromString\b")
PARSER_HOME = "poll.js"  # Gymnos.swapFragment: server-rendered fragments only

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"(?:href|src|action|formaction)\s*=\s*[\"']?\s*javascript:", re.IGNORECASE)


def code(script):
    """A script's text with its comments blanked (line numbers kept): a comment may name what the code may not use."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), script.read_text(), flags=re.DOTALL)
    return re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)


def found(pattern, text):
    return [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in pattern.finditer(text)]


def test_there_are_scripts_and_templates_to_check():
    assert len(SCRIPTS) >= 10
    assert len(TEMPLATES) >= 30


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_script_turns_a_string_into_html_or_code(script):
    text = code(script)
    assert found(HTML_SINKS, text) == []
    assert found(CODE_SINKS, text) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_only_the_fragment_helper_parses_html(script):
    uses = found(PARSERS, code(script))
    if script.name == PARSER_HOME:
        assert len(uses) == 2  # new DOMParser().parseFromString(...) in Gymnos.swapFragment
    else:
        assert uses == []


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT / "templates")))
def test_no_template_has_inline_script_or_handlers(template):
    text = template.read_text()
    assert found(INLINE_SCRIPT, text) == []
    assert found(INLINE_HANDLER, text) == []
    assert found(JAVASCRIPT_URL, text) == []


@pytest.mark.parametrize(
    "line",
    [
        "div.innerHTML = '<p>' + metric.name + '</p>';",
        "row.outerHTML = html;",
        "box.insertAdjacentHTML('beforeend', text);",
        "document.write(name);",
        "range.createContextualFragment(html);",
        "eval(code);",
        "var f = new Function('return 1');",
        "setTimeout('go()', 10);",
        "link.href = 'javascript:alert(1)';",
    ],
)
def test_the_script_check_sees_each_sink(line):
    assert found(HTML_SINKS, line) + found(CODE_SINKS, line) != []


@pytest.mark.parametrize(
    "html",
    [
        "<script>window.x = 1</script>",
        '<script type="text/javascript">go()</script>',
        "<form onsubmit=\"return confirm('sure?')\">",
        '<input type="text" value="{{ url }}" onclick="this.select()">',
        '<a href="javascript:go()">go</a>',
    ],
)
def test_the_template_check_sees_each_way_in(html):
    assert found(INLINE_SCRIPT, html) + found(INLINE_HANDLER, html) + found(JAVASCRIPT_URL, html) != []


def test_the_template_check_lets_script_files_and_data_attributes_be():
    html = '<script src="{% static \'js/page.js\' %}" defer></script><form data-confirm="Cancel?"><input data-on="1">'
    assert found(INLINE_SCRIPT, html) + found(INLINE_HANDLER, html) + found(JAVASCRIPT_URL, html) == []
