"""Every relative link in README.md and docs/**/*.md leads somewhere real.

Operators follow these links from the Chinese guides to the developer reference and back; a
renamed heading or a moved file would silently strand them. External links (http, mailto) are
not fetched. Anchors are checked against the target file's headings, slugged the way GitHub
does (lower case, punctuation dropped, spaces to hyphens), so a link to
``#7a-custom-menu-自定义菜单`` breaks the test when that heading changes. No doc may cite
``../shared`` (outside the repository).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w is Unicode: CJK stays
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a file offers; repeated headings get -1, -2 as on GitHub."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    links = _LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I)]


def broken_links(path: Path) -> list[str]:
    problems = []
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        target_path = (path.parent / unquote(target)).resolve() if target else path
        if not target_path.exists():
            problems.append(f"{link}: no file {target_path}")
        elif anchor and target_path.suffix == ".md" and unquote(anchor) not in anchors(target_path):
            problems.append(f"{link}: no heading #{unquote(anchor)} in {target_path.name}")
    return problems


def test_the_link_checker_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# 3. 域名、ICP 备案和 HTTPS\n\n## Custom menu (自定义菜单)\n",
                                   encoding="utf-8")
    doc = tmp_path / "a.md"
    doc.write_text("[ok](b.md#3-域名icp-备案和-https) [ok](b.md#custom-menu-自定义菜单) "
                   "[web](https://example.com/x) `[code](nowhere.md)`\n"
                   "[gone](c.md) [bad anchor](b.md#nope)\n", encoding="utf-8")
    problems = broken_links(doc)
    assert len(problems) == 2
    assert problems[0].startswith("c.md: no file")
    assert problems[1].startswith("b.md#nope: no heading")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_cites_outside_the_repository(path: Path) -> None:
    assert "../shared" not in path.read_text(encoding="utf-8")


def test_operator_guides_exist_and_are_linked() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    operators = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    for guide in ("wechat-guide.md", "telegram-guide.md", "deploy-guide.md"):
        assert (ROOT / "docs" / "zh" / guide).exists()
        assert f"docs/zh/{guide}" in readme
        assert f"zh/{guide}" in operators


def test_no_code_cites_outside_the_repository() -> None:
    """Code comments and docstrings point at the repository's own docs (protocol-notes.md), not
    at files beside the checkout that a reader of the repository does not have."""
    outside = "../shared"
    suffixes = {".py", ".md", ".yaml", ".conf", ".service", ""}
    citing = [
        str(path.relative_to(ROOT))
        for folder in ("bot", "tests", "bench", "deploy")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in suffixes and path != Path(__file__).resolve()
        and outside in path.read_text(encoding="utf-8", errors="ignore")
    ]
    assert citing == []
