"""Every relative link in the README, docs/ and the examples' READMEs reaches a file and anchor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "examples").glob("*/README.md")]
)
# [text](target) outside code spans; images included. Titles ("...") are not used here.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def links(page: Path) -> list[str]:
    """The link targets of a page, code blocks and code spans left out."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    return LINK.findall(text)


def broken(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or anchor does not exist."""
    bad = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and (file.suffix != ".md" or anchor not in anchors(file))):
            bad.append(target)
    return bad


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    """Each relative link names an existing file and, when it has one, an existing heading."""
    assert broken(page) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """A missing file and a missing heading are both reported; a good link is not."""
    (tmp_path / "other.md").write_text("# Title\n\n## A section: `here`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-section-here) [gone](missing.md#x) [no heading](other.md#nowhere)\n"
        "`[in code](missing.md)`\n"
    )
    assert broken(page) == ["missing.md#x", "other.md#nowhere"]


def test_slug_matches_github() -> None:
    """Backticks, dots and parentheses vanish; spaces become hyphens; hyphens stay."""
    assert slug("`concurrency-observer report --all`") == "concurrency-observer-report---all"
    assert slug("No connection at all: EMF instead") == "no-connection-at-all-emf-instead"
    assert slug("Every function of a region: `--attach-all`") == (
        "every-function-of-a-region---attach-all"
    )
