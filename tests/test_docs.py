"""The README and docs/ say what the code does: their links resolve and their examples answer.

The README's curl examples run as written (curl itself, from the checkout's root) against the
real server on a loopback port, and must print what the README shows, byte for byte (``...``
in a shown answer stands for an elided middle). The Python API example and the "your own
model" commands run against an installed package in tests/test_packaging.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.server import running_server

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without code blocks, inline code and HTML comments: what renders as links."""
    text = COMMENT.sub("", FENCE.sub("", text))
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The ``#anchors`` of ``page``'s headings."""
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def relative_links(page: Path) -> list[str]:
    """Every link in ``page`` that points inside the checkout."""
    found = LINK.findall(_prose(page.read_text()))
    return [link for link in found if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(REPO)}")
    assert broken == []


def test_the_link_checker_sees_links_and_their_anchors(tmp_path):
    """The checker itself: links in code and comments do not count; anchors are GitHub's."""
    page = tmp_path / "page.md"
    page.write_text(
        "## The `serve` command, step 1\n[a](other.md#x) `[b](c.md)` <!-- [d](e.md) -->\n"
        "```\n[f](g.md)\n```\n[h](https://example.com) [i](#the-serve-command-step-1)\n"
    )
    assert relative_links(page) == ["other.md#x", "#the-serve-command-step-1"]
    assert anchors(page) == {"the-serve-command-step-1"}


def readme_curls() -> list[tuple[str, str]]:
    """Each ``curl`` line of the README's sh blocks with the answer shown below it."""
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        lines = block.splitlines()
        for line, shown in zip(lines, [*lines[1:], ""], strict=True):
            if line.startswith("curl "):
                assert shown.startswith("# {"), f"no answer shown under {line[:60]}"
                found.append((line, shown[2:]))
    return found


def test_the_readme_shows_three_curl_examples_with_their_answers():
    urls = [next(w for w in shlex.split(line) if "localhost:" in w) for line, _ in readme_curls()]
    assert [url.split("8080", 1)[1] for url in urls] == [
        "/v1/models/model:classify",
        "/v1/models/model:predict",
        "/v2/models/model/infer",
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_examples_answer_as_shown(digits_model):
    with running_server(digits_model) as server:
        address = server.url.removeprefix("http://")
        for line, shown in readme_curls():
            words = [w.replace("localhost:8080", address) for w in shlex.split(line)]
            result = subprocess.run(
                words, cwd=REPO, capture_output=True, text=True, timeout=30, check=True
            )
            head, *elided = shown.split("...")
            assert result.stdout.startswith(head), (line[:60], result.stdout)
            if elided:
                assert result.stdout.endswith(elided[-1]), (line[:60], result.stdout)
            else:
                assert result.stdout == shown, (line[:60], result.stdout)


def test_the_tritonclient_example_runs_as_written(digits_model):
    """docs/serving.md's tritonclient example, unchanged but for the server's address."""
    pytest.importorskip("tritonclient.http")
    text = (REPO / "docs" / "serving.md").read_text()
    (snippet,) = re.findall(
        r"```python\n(import numpy as np\nimport tritonclient.*?)```", text, re.S
    )
    with running_server(digits_model) as server:
        code = snippet.replace("localhost:8080", server.url.removeprefix("http://"))
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith("[["), printed
    assert printed.endswith("]]"), printed
    assert len(printed.strip("[]").split()) == 10  # ten probabilities for the blank digit
