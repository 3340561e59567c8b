"""Notes as HTML: the worst Markdown of the longest note renders about as fast as an ordinary note.

A note is anyone's text (50,000 characters at most) and is rendered on every view of its run, shares
included. markdown-it-py and nh3 are linear on the inputs that are quadratic in naive Markdown
parsers (cmark's pathological tests: unclosed emphasis and links, deep nesting, long tables); this
keeps it so.
"""

from html.parser import HTMLParser
from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from experiments.curation.markdown import ATTRIBUTES, SCHEMES, TAGS, render
from experiments.curation.sidecar import MAX_NOTES
from tests.bounds import FUZZ, assert_quick


def note(unit: str) -> str:
    """``unit`` repeated to the longest note."""
    return (unit * (MAX_NOTES // len(unit) + 1))[:MAX_NOTES]


ORDINARY = note(
    "## Run 12\n\nLower *val_loss* than [the baseline](https://example.org/runs/11), with `batch_size` 64.\n\n"
    "- tried **adam** and sgd\n- sgd ~~diverged~~ stalled\n\n| lr | val_loss |\n|---:|---|\n| 0.01 | 9.2 |\n\n"
    "> next: a wider network\n\n```\npython manage.py train config.json\n```\n\n"
)
WORST = {
    "nested emphasis": "*a **a " * (MAX_NOTES // 14) + "b" + " a** a*" * (MAX_NOTES // 14),
    "emphasis closers without openers": note("a_ "),
    "emphasis openers without closers": note("_a "),
    "mismatched emphasis": note("*a_ "),
    "emphasis in threes": "a**b" + note("c* "),
    "link openers without closers": note("[a"),
    "link closers without openers": note("a]"),
    "image openers": note("!["),
    "link openers and emphasis closers": note("[ a_"),
    "brackets and parentheses": note("[ (]("),
    "nested brackets": "[" * (MAX_NOTES // 2) + "a" + "]" * (MAX_NOTES // 2),
    "nested block quotes": note("> ") + "a",
    "nested lists": "".join("  " * depth + "* a\n" for depth in range(220)),
    "backtick runs": "".join("e" + "`" * length for length in range(1, 315)),
    "unclosed link destinations": note("[a](<b"),
    "unclosed link titles": note('[a](b "'),
    "a table with many columns": note("a|")[: MAX_NOTES // 2] + "\n" + note("-|")[: MAX_NOTES // 2 - 1],
    "a table with many rows": "a|b\n-|-\n" + note("x\n"),
    "link references": "".join(f"[{i}]: u\n" for i in range(MAX_NOTES // 10)) + "[0] " * 100,
    "one reference used many times": "[a]: u\n" + note("[a] "),
    "less-than signs": note("<"),
    "entities": note("&#"),
    "autolinks": note("<a:"),
    "setext headings": note("a\n=\n"),
    "code fences": note("```\n"),
    "strikethrough": note("~~a"),
    "backslashes": note("\\"),
}


def test_the_worst_notes_of_the_longest_length_render_about_as_fast_as_an_ordinary_one():
    # 25,000 table rows are 800 KB of HTML: 1.4 s of CPU here, linear in the note's length.
    assert_quick(render, {name: text[:MAX_NOTES] for name, text in WORST.items()}, ORDINARY, budget=4.0)


MARKUP = st.sampled_from(
    ["*", "_", "**", "~~", "`", "[", "]", "(", ")", "![", "<", ">", "&", "#", "|", "-", "\n", "  ", "\\", '"',
     "javascript:", "<script>", "a", "1.", "> ", "```", "=", "http://x", "](", "onclick="]
)  # fmt: skip


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@FUZZ
@given(st.lists(MARKUP, max_size=300).map("".join) | st.text(max_size=500))
def test_any_note_renders_to_allowed_tags_attributes_and_links_only(text):
    tags = Tags()
    tags.feed(render(text))
    for tag, attributes in tags.found:
        assert tag in TAGS
        assert set(attributes) <= ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        assert urlsplit(attributes.get("href") or "").scheme in SCHEMES | {""}
