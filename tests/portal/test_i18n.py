"""The Chinese catalogue is complete, compiled, and chosen by default; English is one click away.

Source strings are English, zh-hans is the default language, so an untranslated or fuzzy entry
shows a Chinese patient English text, and a stale .mo shows them yesterday's catalogue.
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import ROOT

LC_MESSAGES = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_PATH = LC_MESSAGES / "django.po"
MO_PATH = LC_MESSAGES / "django.mo"
# The project catalogue plus any app's own (e.g. consult/locale, portal/partners/locale): every
# one of them must be complete and compiled.
CATALOGUES = [PO_PATH] + sorted(
    p for pattern in ("*/locale/zh_Hans/LC_MESSAGES/django.po",
                      "portal/*/locale/zh_Hans/LC_MESSAGES/django.po")
    for p in ROOT.glob(pattern) if ".venv" not in p.parts)

_KEYWORD_RE = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")
_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[diouxXeEfFgGcrsa%]")


@dataclass
class PoEntry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def catalog_keys(self) -> set:
        """The keys `gettext.GNUTranslations` stores this entry under."""
        base = self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"
        if self.msgid_plural is None:
            return {base}
        return {(base, n) for n in self.msgstr}


def _unquote(literal: str) -> str:
    # PO string literals use C escapes (\n, \t, \", \\), which Python's literal syntax shares.
    return ast.literal_eval(literal)


def parse_po(path: Path) -> list[PoEntry]:
    """A small PO reader: entries, flags, contexts and plural forms; obsolete (#~) ignored."""
    entries: list[PoEntry] = []
    entry = PoEntry()
    current: tuple[str, int | None] | None = None
    seen_keyword = False

    def finish() -> None:
        nonlocal entry, current, seen_keyword
        if seen_keyword:
            entries.append(entry)
        entry, current, seen_keyword = PoEntry(), None, False

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            if seen_keyword:
                finish()
            entry.flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            continue
        if line.startswith("#"):
            if seen_keyword:
                finish()
            continue
        match = _KEYWORD_RE.match(line)
        if match:
            keyword, index, literal = match.groups()
            if keyword in ("msgid", "msgctxt") and entry.msgstr:
                finish()  # a new entry without a blank line before it
            if not seen_keyword:
                entry.line = number
            seen_keyword = True
            value = _unquote(literal)
            if keyword == "msgid":
                entry.msgid, current = value, ("msgid", None)
            elif keyword == "msgctxt":
                entry.msgctxt, current = value, ("msgctxt", None)
            elif keyword == "msgid_plural":
                entry.msgid_plural, current = value, ("msgid_plural", None)
            else:
                n = int(index) if index is not None else 0
                entry.msgstr[n], current = value, ("msgstr", n)
            continue
        if line.startswith('"') and current is not None:
            value = _unquote(line)
            name, n = current
            if name == "msgstr":
                entry.msgstr[n] += value
            else:
                setattr(entry, name, getattr(entry, name) + value)
            continue
        raise AssertionError(f"{path.name}:{number}: cannot parse {raw!r}")
    finish()
    return entries


def _placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in _PLACEHOLDER_RE.finditer(text) if m.group(0) != "%%")


@pytest.fixture(scope="module", params=CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def po_path(request) -> Path:
    return request.param


@pytest.fixture(scope="module")
def po_entries(po_path) -> list[PoEntry]:
    assert po_path.exists(), "run makemessages -l zh_Hans"
    return parse_po(po_path)


def test_i18n_catalogue_is_not_trivially_small():
    messages = [e for e in parse_po(PO_PATH) if not e.is_header]
    assert len(messages) > 100
    assert {"Family members", "Log in", "Sign up", "Resident ID number"} <= {
        e.msgid for e in messages}


def test_i18n_catalogue_has_no_empty_or_fuzzy_entries(po_entries):
    problems = []
    for e in po_entries:
        if "fuzzy" in e.flags:
            problems.append(f"line {e.line}: fuzzy {e.msgid!r}")
        if e.is_header:
            continue
        if not e.msgstr or any(not s.strip() for s in e.msgstr.values()):
            problems.append(f"line {e.line}: untranslated {e.msgid!r}")
    assert not problems, "\n".join(problems)


def test_i18n_catalogue_plural_entries_have_one_form_for_chinese(po_entries):
    header = next(e for e in po_entries if e.is_header).msgstr[0]
    assert "nplurals=1; plural=0;" in header
    for e in po_entries:
        if e.msgid_plural is not None:
            assert set(e.msgstr) == {0}, f"line {e.line}: {e.msgid!r}"


def test_i18n_catalogue_keeps_python_format_placeholders(po_entries):
    problems = []
    for e in po_entries:
        if e.is_header or "python-format" not in e.flags:
            continue
        wanted = {tuple(_placeholders(e.msgid))}
        if e.msgid_plural is not None:
            # A one-form language may use the plural's placeholders (or the singular's).
            wanted.add(tuple(_placeholders(e.msgid_plural)))
        for n, text in e.msgstr.items():
            if tuple(_placeholders(text)) not in wanted:
                problems.append(f"line {e.line}: msgstr[{n}] of {e.msgid!r}: {text!r}")
    assert not problems, "\n".join(problems)


def test_i18n_compiled_catalogue_matches_po(po_path, po_entries):
    """The .mo holds exactly the .po's messages (mtime is useless on a fresh clone)."""
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), "run compilemessages"
    with mo_path.open("rb") as fp:
        compiled = gettext.GNUTranslations(fp)
    catalog = compiled._catalog  # msgid (or (msgid, n) for plurals) -> translation

    expected: dict = {}
    for e in po_entries:
        if e.is_header:
            continue
        for key in e.catalog_keys:
            n = key[1] if isinstance(key, tuple) else 0
            expected[key] = e.msgstr[n]
    in_mo = {k: v for k, v in catalog.items() if k != ""}

    assert set(in_mo) == set(expected), (
        f"recompile the catalogue: missing from .mo {sorted(map(str, set(expected) - set(in_mo)))[:10]}, "
        f"only in .mo {sorted(map(str, set(in_mo) - set(expected)))[:10]}"
    )
    changed = sorted(str(k) for k in expected if in_mo[k] != expected[k])
    assert not changed, f"recompile the catalogue: translations differ for {changed[:10]}"


def test_i18n_compiled_catalogue_translates_key_terms():
    with MO_PATH.open("rb") as fp:
        zh = gettext.GNUTranslations(fp)
    assert zh.gettext("Family members") == "就诊人"
    assert zh.gettext("Log in") == "登录"
    assert zh.gettext("Sign up") == "注册"
    assert zh.gettext("Log out") == "退出登录"
    assert zh.gettext("Resident ID number") == "身份证号"
    assert zh.gettext("Mobile number") == "手机号"


def test_i18n_platform_home_defaults_to_chinese(platform_client):
    response = platform_client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    body = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in body
    assert "登录" in body and "注册" in body
    assert ">Log in<" not in body
    # The way out is offered in its own language, not as "英语".
    assert 'value="en" lang="en">' in body and "English</button>" in body


def test_i18n_set_language_switches_platform_home_to_english(platform_client):
    response = platform_client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"

    body = platform_client.get("/").content.decode()
    assert '<html lang="en">' in body
    assert "Log in" in body and "Sign up" in body and "Find a hospital" in body
    assert "登录" not in body
    # The switch back to Chinese is offered, in Chinese.
    assert 'lang="zh-hans">' in body and "简体中文" in body
