"""docs/quickstart.md and README.md run as written (the contract in tests/e2e/docs_contract.py):
the Python blocks as one script and the bash blocks as one script, each on its own fresh server
with every training's budget capped at 10 milli node hours (36 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.docs_contract import DocsServer, clean_copy, script, start_server

CAP = {"AUTOMILL_MAX_TRAIN_BUDGET_MILLI_NODE_HOURS": "10"}
#: README's bash blocks are its two set-up commands, shown and not run (``bash notest``).
PAGES = [("docs/quickstart.md", "python"), ("docs/quickstart.md", "bash"), ("README.md", "python")]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[DocsServer]:
    root = clean_copy(tmp_path / "clone")
    assert not (root.parent / "shared").exists()
    server = start_server(root, CAP)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("page,lang", PAGES, ids=[f"{p}:{lang}" for p, lang in PAGES])
def test_page_runs_as_written(fresh: DocsServer, page: str, lang: str) -> None:
    from tests.e2e.docs_contract import run_script

    code = script((ROOT / page).read_text(), lang)
    assert code.strip(), f"{page} has no runnable {lang} blocks"
    proc = run_script(fresh, lang, code, timeout=1200)
    assert proc.returncode == 0, (
        f"{page} ({lang}) failed with exit code {proc.returncode}\n--- output\n"
        f"{proc.stdout[-6000:]}\n--- errors\n{proc.stderr[-6000:]}\n--- server log\n"
        f"{fresh.log()[-4000:]}"
    )
    assert "Traceback" not in fresh.log(), fresh.log()[-4000:]
