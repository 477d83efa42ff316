"""The README is the front door and docs/ holds the detail: the README stays short, links every
page under docs/, and no relative link in the README or docs/ points at nothing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _pages() -> list[Path]:
    return [README, *sorted(p for p in DOCS.rglob("*") if p.is_file())]


def _prose(path: Path) -> str:
    """The text without code (a `[x](y)` inside code is not a link)."""
    return INLINE_CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))


def _relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(path))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # http:, https:, mailto:, ...


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines: move detail to docs/"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / unquote(t.split("#", 1)[0])).resolve()
              for t in _relative_links(README) if t.split("#", 1)[0]}
    pages = [p for p in DOCS.rglob("*") if p.is_file()]
    assert pages, "docs/ is empty"
    missing = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not missing, f"not linked from README.md: {missing}"


def test_relative_links_point_at_existing_files_and_headings():
    broken = []
    for page in _pages():
        for target in _relative_links(page):
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / unquote(file_part)).resolve() if file_part else page
            where = f"{page.relative_to(ROOT)} → {target}"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where}: no such heading")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_link_checker_sees_links():
    """Guard against a link pattern that matches nothing (every test above would pass)."""
    assert "docs/partner-api.md" in _relative_links(README)
    assert _slug("Messaging app (WeChat-style official-account template messages)") == \
        "messaging-app-wechat-style-official-account-template-messages"
