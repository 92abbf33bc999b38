"""Nothing a page shows escapes the catalogues.

- Every message marked in the templates and in `api/web` (as `pybabel extract` finds them, with the project's
  babel.cfg) has its Arabic translation: a message added without running extract and update fails here, not
  only after the next extract (tests/test_ui_pages.py checks the catalogue's own entries).
- No template has words outside a message: text between tags and the attributes people read (title,
  placeholder, aria-label, alt) are made of template expressions, marked messages, numbers and punctuation
  only, apart from the few names that are the same in both languages and elements with a `lang` of their
  own (a link to the English template reads the same on both pages)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from lxml import html

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "api" / "templates"
CATALOGUE = ROOT / "api" / "translations" / "ar" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# Names written the same way on Arabic and English pages (formats, products, the bpmn.io credit).
SAME_IN_BOTH = {"Excel", "CSV", "XLSX", "PDF", "HTML", "JSON", "BPMN", "DMN", "API", "OpenAPI", "English",
                "العربية", "bpmn.io", "Prefect", "Tansiq"}
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
TRANS_BLOCK = re.compile(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", re.S)
JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
WORD = re.compile(r"[A-Za-z\u0621-\u064A\u0671-\u06D3]{2,}")


def _marked_messages() -> set[str]:
    with open(ROOT / "api" / "translations" / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_marked_message_has_its_arabic_translation():
    with CATALOGUE.open("rb") as po:
        catalogue = read_po(po, locale="ar")
    translated = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalogue
                  if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))}
    marked = _marked_messages()
    assert len(marked) > 500  # the extraction found the project's messages
    missing = sorted(marked - translated)
    assert not missing, f"run the two pybabel commands in docs/ui.md and translate: {missing[:20]}"


def _stray_words(template: Path) -> list[str]:
    source = JINJA.sub(" ", TRANS_BLOCK.sub(" ", template.read_text(encoding="utf-8")))
    if not source.strip():
        return []
    tree = html.fragment_fromstring(source, create_parent="div")
    # Elements with a lang of their own are in that language on every page (the import template's links).
    for hidden in tree.xpath(".//script|.//style|.//code|.//svg|.//*[@lang]"):
        hidden.drop_tree()
    texts = [text for text in tree.xpath(".//text()")]
    texts += [value for attribute in READ_ATTRIBUTES for value in tree.xpath(f".//@{attribute}")]
    stray = []
    for text in texts:
        words = [w for w in WORD.findall(text) if w not in SAME_IN_BOTH]
        if words:
            stray.append(" ".join(text.split())[:80])
    return stray


def test_no_template_shows_words_outside_the_catalogue():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 30
    stray = {str(t.relative_to(TEMPLATES)): words for t in templates if (words := _stray_words(t))}
    assert not stray, stray


def test_the_check_finds_a_word_outside_the_catalogue(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<p>{{ _("Marked") }} Unmarked <span title="Also unmarked">{{ x }}</span> ١٢ • PDF</p>')
    assert _stray_words(page) == ["Unmarked", "Also unmarked"]
