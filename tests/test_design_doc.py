"""DESIGN.md, the map of the house, cannot silently drift from the code (it did once: a copy outside the
repository was reset between sessions and lost a round of sections).

- Every path of its layout block exists in the checkout (nesting by indentation, two spaces a level).
- Every repository path and every `ogc_gateway.…` name it quotes in backquotes exists.
- Its CLI table lists exactly the commands and subcommands `ogc_gateway.cli` defines.

The checks read the document as text; they say which line or name is wrong.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "DESIGN.md"

# A path as the layout writes it: a folder (`engine/`), a file with an extension, or one of these.
_PATH = re.compile(r"^(?:[\w.-]+/|[\w./-]+\.(?:py|toml|md|yaml|yml|conf|txt|service|json|html|css|js|mjs))$")
_BARE_FILES = {"LICENSE", "Dockerfile", ".ci/run"}
_ENTRY_INDENT = 8        # entries sit at most four levels deep; a deeper line continues a description


@pytest.fixture(scope="module")
def text() -> str:
    return DESIGN.read_text(encoding="utf-8")


def layout_block(text: str) -> list[str]:
    """The lines of the first code block after the "## Layout" heading."""
    after = text[text.index("\n## Layout"):]
    start = after.index("```\n") + 4
    return after[start:after.index("```", start)].splitlines()


def layout_paths(lines: list[str]) -> list[tuple[int, str]]:
    """(line number in the block, repository-relative path) of every entry: the leading path tokens of
    each line (several may share a line), under the folder of the nearest shallower entry."""
    folders: list[str] = []          # the open folder at each level
    found = []
    for number, line in enumerate(lines, 1):
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent > _ENTRY_INDENT:
            continue
        assert indent % 2 == 0, f"layout line {number}: indentation {indent} is not a multiple of two"
        level = indent // 2
        assert level <= len(folders), f"layout line {number}: nested under no folder"
        del folders[level:]
        parent = "".join(folders)
        opened = None
        for token in line.split():
            if not (_PATH.match(token) or token in _BARE_FILES):
                break
            found.append((number, parent + token))
            if token.endswith("/"):
                opened = token
        assert found and found[-1][0] == number, f"layout line {number} names no path: {line.strip()!r}"
        if opened:
            folders.append(opened)
    return found


def test_the_layout_names_only_paths_that_exist(text):
    paths = layout_paths(layout_block(text))
    assert len(paths) > 100, "the layout block was not found or not parsed"
    missing = [f"layout line {n}: {p}" for n, p in paths if not (ROOT / p).exists()]
    assert not missing, "DESIGN.md's layout names paths that do not exist:\n" + "\n".join(missing)


def test_the_layout_parser_nests_and_stops_at_descriptions():
    lines = ["pyproject.toml            one package",
             "ogc_gateway/",
             "  app.py                  create_app",
             "  engine/                 the engine",
             "    where.py  query.py    where clauses; items.py is not a path here",
             "                          a description that goes on.py",
             "    catalog/              items",
             "      store.py            the seam",
             "  rest/                   a face",
             "tests/                    pytest"]
    assert [p for _, p in layout_paths(lines)] == [
        "pyproject.toml", "ogc_gateway/", "ogc_gateway/app.py", "ogc_gateway/engine/",
        "ogc_gateway/engine/where.py", "ogc_gateway/engine/query.py", "ogc_gateway/engine/catalog/",
        "ogc_gateway/engine/catalog/store.py", "ogc_gateway/rest/", "tests/"]


def quoted(text: str) -> list[str]:
    """Every backquoted span outside code blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", prose)


def test_quoted_repository_paths_exist(text):
    """A quoted path whose first part is a folder of the checkout, of the package or of the engine
    (`engine/nodata.py`, `catalog/store.py`, `web/static/`) must exist there; other paths are runtime
    places (`cache_dir/uploads/`) and are left alone."""
    bases = [ROOT, ROOT / "ogc_gateway", ROOT / "ogc_gateway" / "engine"]
    missing = []
    for span in set(quoted(text)):
        if not re.fullmatch(r"[A-Za-z_.][\w.-]*(?:/[\w.-]+)*/?", span) or "/" not in span:
            continue
        first = span.split("/", 1)[0]
        if first in (".", ".."):          # the working folder, ../shared: outside the checkout
            continue
        homes = [b for b in bases if (b / first).is_dir()]
        if homes and not any((b / span).exists() for b in homes):
            missing.append(span)
    assert not missing, f"DESIGN.md quotes paths that do not exist: {sorted(missing)}"


def resolve(dotted: str) -> object:
    """The module, or attribute of a module, a dotted `ogc_gateway…` name means."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ModuleNotFoundError(dotted)


def test_quoted_package_names_exist(text):
    names = {span for span in quoted(text) if re.fullmatch(r"ogc_gateway(?:\.\w+)+", span)}
    assert names, "no `ogc_gateway.…` name found"
    missing = []
    for name in sorted(names):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"DESIGN.md names what ogc_gateway does not have: {missing}"


def cli_commands(group: click.Group, prefix: str = "") -> set[str]:
    """Every command a user can run, as "catalog sync": the leaves of the click tree."""
    found: set[str] = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= cli_commands(command, path + " ")
        else:
            found.add(path)
    return found


def documented_commands(text: str) -> set[str]:
    """The commands the CLI table's first column shows: the words after `ogc-gateway` up to the first
    argument (upper case, `[`, `-`, `…`)."""
    section = text[text.index("**CLI**"):text.index("**Config (YAML)**")]
    found = set()
    for line in section.splitlines():
        if not line.startswith("| `ogc-gateway"):
            continue
        first_cell = re.split(r"(?<!\\)\|", line)[1]
        for span in re.findall(r"`ogc-gateway ([^`]+)`", first_cell):
            words = []
            for word in span.split():
                if word[0] in "[-…" or word[0].isupper():
                    break
                words.append(word)
            found.add(" ".join(words))
    return found


def test_the_cli_table_lists_every_command(text):
    from ogc_gateway.cli import cli

    defined = cli_commands(cli)
    documented = documented_commands(text)
    assert len(defined) > 10
    assert not defined - documented, f"commands missing from DESIGN.md's CLI table: {sorted(defined - documented)}"
    assert not documented - defined, f"DESIGN.md's CLI table shows commands that do not exist: " \
                                     f"{sorted(documented - defined)}"


def test_the_command_reader_stops_at_arguments():
    table = ("**CLI**\n| command | does |\n|---|---|\n"
             "| `ogc-gateway serve DIR [--host]` | x |\n"
             "| `ogc-gateway catalog add SERVICE FILE…`, `ogc-gateway catalog list SERVICE` | `ogc-gateway no` |\n"
             "| `ogc-gateway make-layer URL OUTPUT [--token \\| --gis]` | y |\n**Config (YAML)**")
    assert documented_commands(table) == {"serve", "catalog add", "catalog list", "make-layer"}
