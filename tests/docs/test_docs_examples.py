"""The manual is tested: its runnable commands run, its CLI page lists every command, the README
stays a short front door whose links and measured figures resolve.

Runnable blocks: a fenced ``console`` or ``bash`` block right after a ``<!-- test -->`` line in a
page under ``docs/``. A console block's commands are its ``$ `` lines; a bash block's are its
non-comment lines; a trailing backslash continues a command. The blocks of one page run in
order, in one temporary folder, through the ``gbench`` of this interpreter's environment, and
every command must exit 0. Commands that train or score run at the ``smoke`` profile.

A file the commands need (a plugin, a drawing script) is a fenced block of any language right
after a ``<!-- test: write NAME -->`` line: it is written to NAME in that folder before the page's
commands run, so the page shows exactly the file that is tested.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = "<!-- test -->"
WRITE = re.compile(r"^<!-- test: write ([\w.\-/]+) -->$")
FENCE = re.compile(r"^```(\w+)")
#: gbench commands that train, synthesize or score: runnable only at the smoke profile.
HEAVY = ("train-gen", "train-migan", "synthesize", "segment", "quality", "reproduce", "demo", "bench")
#: Seconds one documented command may take (the whole file stays well under a minute on 2 cores).
TIMEOUT_S = 120


def runnable_blocks(text: str, where: str = "") -> list[list[str]]:
    """The commands of every runnable block of a Markdown page, one list per block."""
    lines = text.splitlines()
    blocks: list[list[str]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        m = FENCE.match(lines[j].strip()) if j < len(lines) else None
        if m is None or m.group(1) not in ("console", "bash"):
            raise ValueError(f"{where}:{i + 1}: {MARKER} must precede a ```console or ```bash block")
        lang, body, j = m.group(1), [], j + 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            body.append(lines[j])
            j += 1
        blocks.append(_commands(body, lang))
        i = j + 1
    return blocks


def _commands(body: list[str], lang: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for raw in body:
        line = raw.rstrip()
        if not pending:
            if lang == "console":
                if not line.startswith("$ "):
                    continue  # printed output
                line = line[2:]
            elif not line.strip() or line.lstrip().startswith("#"):
                continue
        if pending:
            line = line.strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        out.append((pending + line).strip())
        pending = ""
    if pending:
        out.append(pending.strip())
    return out


def written_files(text: str, where: str = "") -> dict[str, str]:
    """The files a page's runnable commands need: ``{name: content}`` of each block after a
    ``<!-- test: write NAME -->`` line."""
    lines = text.splitlines()
    files: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = WRITE.match(line.strip())
        if m is None:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not FENCE.match(lines[j].strip()):
            raise ValueError(f"{where}:{i + 1}: {line.strip()} must precede a fenced block")
        body: list[str] = []
        j += 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            body.append(lines[j])
            j += 1
        files[m.group(1)] = "\n".join(body) + "\n"
    return files


def _pages() -> dict[str, list[list[str]]]:
    pages = {}
    for path in sorted(DOCS.rglob("*.md")):
        rel = str(path.relative_to(DOCS))
        blocks = runnable_blocks(path.read_text(encoding="utf-8"), rel)
        if blocks:
            pages[rel] = blocks
    return pages


PAGES = _pages()


def test_parser_reads_console_and_bash_blocks() -> None:
    text = "\n".join([
        "intro", MARKER, "```console", "$ gbench a \\", "    --b c", "output line", "$ gbench d", "```",
        "```console", "$ not runnable", "```", MARKER, "", "```bash", "# comment", "gbench e", "```"])
    assert runnable_blocks(text) == [["gbench a --b c", "gbench d"], ["gbench e"]]
    with pytest.raises(ValueError, match="must precede"):
        runnable_blocks(f"{MARKER}\n```python\nx = 1\n```\n", "page.md")
    page = "text\n<!-- test: write pkg/a.py -->\n```python\nx = 1\n```\n"
    assert written_files(page) == {"pkg/a.py": "x = 1\n"}
    with pytest.raises(ValueError, match="must precede"):
        written_files("<!-- test: write a.py -->\nno block\n", "page.md")


def test_the_tutorials_and_guides_have_runnable_commands() -> None:
    assert "getting-started.md" in PAGES
    assert any(page.startswith("tutorials/") for page in PAGES)
    for page, blocks in PAGES.items():
        for cmd in (c for b in blocks for c in b):
            words = cmd.split()
            if words[:1] == ["gbench"] and any(w in HEAVY for w in words[1:3]):
                assert "--profile smoke" in cmd, f"{page}: runnable command not at the smoke profile: {cmd}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_documented_commands_run(page: str, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               OMP_NUM_THREADS="1", GBENCH_DATA=str(tmp_path / "no-real-data"), COLUMNS="100")
    for name, content in written_files((DOCS / page).read_text(encoding="utf-8"), page).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    for cmd in (c for b in PAGES[page] for c in b):
        proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        assert proc.returncode == 0, f"docs/{page}: `{cmd}` exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def _command_names(cmd, prefix: str = "gbench") -> list[str]:
    names = [prefix]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            names += _command_names(sub, f"{prefix} {name}")
    return names


def test_cli_page_lists_every_command_and_option() -> None:
    from mkdocs_click._docs import make_command_docs

    from gbench.cli._click import cli

    text = "\n".join(make_command_docs("gbench", cli, style="plain", list_subcommands=True))
    names = _command_names(cli)
    assert len(names) > 10 and "gbench segment" in names
    missing = [name for name in names if f"{name} [OPTIONS]" not in text]  # each command's usage line
    assert not missing, f"missing from the CLI page: {missing}"
    seg = cli.commands["segment"]
    for param in seg.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        assert any(f"{opt} " in text or f"{opt}\n" in text for opt in param.opts), f"segment {param.opts}"
    assert "::: mkdocs-click" in (DOCS / "reference" / "cli.md").read_text()


def _github_slug(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_readme_is_a_short_front_door_whose_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for heading in ("Set-up: two commands", "Quick start 1", "Quick start 2", "Quick start 3"):
        assert heading in readme
    assert "make demo" in readme and "make test" in readme
    assert not re.search(r"\bissue \d+", readme, re.IGNORECASE), "history belongs in CHANGELOG.md"
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        path = ROOT / target
        assert path.exists(), f"README links to a missing file: {link}"
        if anchor:
            slugs = {_github_slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)}
            assert anchor in slugs, f"README links to a missing anchor: {link}"
    assert re.search(r"\]\(benchmarks/RESULTS\.md#", readme), "figures link to where they were measured"


def test_project_files_exist() -> None:
    import yaml

    assert "MIT License" in (ROOT / "LICENSE").read_text() and "the gbench developers" in (ROOT / "LICENSE").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    titles = " ".join(ref["title"] for ref in cff["references"])
    assert cff["cff-version"] and "Sharp-GAN" in titles and "Multi-focus" in titles
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and "keepachangelog" in changelog
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    assert results.count("**Command:**") >= 5 and "2026-11-30" in results
