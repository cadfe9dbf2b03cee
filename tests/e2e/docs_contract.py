"""The executed-docs contract: a page's code blocks run as written.

Every fenced block tagged ``python`` on a page, concatenated in file order, runs as one Python
script; every block tagged ``bash``, concatenated, runs as one ``bash -euo pipefail`` script. A
block whose info string has a second word ``notest`` (```` ```bash notest ````) is shown but not
run. Untagged blocks (and other languages) are output samples.

Each script runs from the root of a copy of the repository (the files git tracks or would track,
nothing beside it: no ``../shared``) against its own fresh server started the way the quickstart's
first section says (``./scripts/serve``), so a page can only use what a newcomer has.

A small runner of our own rather than pytest-markdown-docs or Sybil: those run each block alone
or share a Python namespace, while this contract runs a page's blocks as one program per
language, bash included, against a server the page itself describes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
DOCS_PORT = 8080  # the address the pages use; rewritten to the test server's port


def blocks(markdown: str, lang: str) -> list[str]:
    """The bodies of the fenced blocks tagged ``lang`` (and not ``notest``), in order."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, words = m.group("fence"), m.group("info").split()
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        if words[:1] == [lang] and "notest" not in words[1:2]:
            out.append("\n".join(body))
    return out


def script(markdown: str, lang: str) -> str:
    parts = blocks(markdown, lang)
    return "\n\n".join(parts) + "\n" if parts else ""


def clean_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it (tracked and untracked-but-not-ignored files), with
    this checkout's .venv linked in so that ./scripts/setup finds it installed."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the work tree but still in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


@dataclass
class DocsServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(root: Path, env: dict[str, str], timeout: float = 120) -> DocsServer:
    port = free_port()
    log_path = root.parent / f"server-{port}.log"
    with open(log_path, "wb") as log:  # the server keeps writing to its copy
        proc = subprocess.Popen(
            ["./scripts/serve", "--port", str(port)],
            cwd=root,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DocsServer(root, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"./scripts/serve exited early:\n{server.log()[-5000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"./scripts/serve not ready in {timeout} s:\n{server.log()[-5000:]}")


def run_script(server: DocsServer, lang: str, code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a page's script against ``server`` (its address rewritten from the pages' port)."""
    code = code.replace(f"127.0.0.1:{DOCS_PORT}", f"127.0.0.1:{server.port}")
    path = server.root.parent / f"docs-script.{'py' if lang == 'python' else 'sh'}"
    path.write_text(code)
    cmd = (
        [str(server.root / ".venv" / "bin" / "python"), str(path)]
        if lang == "python"
        else ["bash", "-euo", "pipefail", str(path)]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMILL_")}
    # the CLI's default endpoint is the pages' address: point it at this server, and keep its
    # config file out of the user's home
    env.update(
        PYTHONUNBUFFERED="1",
        AUTOMILL_ENDPOINT=f"http://127.0.0.1:{server.port}",
        AUTOMILL_CONFIG=str(server.root.parent / "automill-cli.ini"),
    )
    return subprocess.run(cmd, cwd=server.root, env=env, capture_output=True, text=True, timeout=timeout)
