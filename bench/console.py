"""How fast the web console's two biggest pages render: the Datasets page of a project with 1,000
datasets, and the Items tab of a 10,000-image dataset.

A real ``automill serve`` (SQLite, one worker for the import) is filled through the API: 1,000 text
datasets, and one image classification dataset imported from 10,000 distinct small PNGs in a bucket
folder. Then, each page ``--runs`` times (after one warm-up):

- ``api``: the wall time of the REST calls the page makes (Datasets: ListDatasets and ListOperations of
  the location, every page; Items: GetDataset and the first ListExamples page with its label counts);
- ``browser``: in a headless Chromium (Debian's, as the console's tests use), from navigation start to
  the page being drawn (``main[data-ready]`` and its rows or thumbnails in the DOM), as
  ``performance.now()`` reports it; image bytes load lazily after that and are not counted. Each run
  leaves the page only once its later requests (the Last import column, the thumbnails) are answered,
  so runs do not overlap on the server;
- ``split``: for the browser runs, where the time went (medians): ``to API call`` (the shell, scripts and
  session until the page's first API request starts), ``API call`` (that request in the browser, from
  start to its response's end), ``drawing`` (from that response to the page being drawn).

Prints a table and writes bench/results/console-<timestamp>.{json,md}. Measures, never asserts.
Run: ``.venv/bin/python -m bench.console`` (about 3 minutes on 2 cores, most of it filling the server).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PARENT = "projects/bench/locations/us-central1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AUTOMILL_LOG_LEVEL": "WARNING"}
    cmd = [
        sys.executable,
        "-m",
        "automill",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def fill(base: str, data_dir: Path, datasets: int, images: int) -> str:
    """-> the name of the image dataset, after creating ``datasets`` text datasets."""
    s = requests.Session()
    t0 = time.monotonic()
    for i in range(datasets - 1):
        meta = {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}
        s.post(
            f"{base}/v1/{PARENT}/datasets", json={"displayName": f"dataset_{i:04d}", **meta}, timeout=30
        ).raise_for_status()
    print(f"created {datasets - 1} datasets in {time.monotonic() - t0:.0f} s", flush=True)
    from PIL import Image

    folder = data_dir / "buckets" / "bench-console" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    labels = ["cat", "dog", "bird", "fish", "frog"]
    for i in range(images):
        img = Image.new("RGB", (32, 32), ((i * 7) % 256, (i // 256) % 256, i % 256))
        img.putpixel((i % 32, (i // 32) % 32), (255 - (i % 256), 0, 0))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        (folder / f"{i:05d}.png").write_bytes(buf.getvalue())
        split = "TRAIN" if i % 10 < 8 else ("VALIDATION" if i % 10 == 8 else "TEST")
        rows.append(f"{split},gs://bench-console/images/{i:05d}.png,{labels[i % len(labels)]}")
    (folder.parent / "index.csv").write_text("\n".join(rows) + "\n")
    meta = {"imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}
    op = s.post(f"{base}/v1/{PARENT}/datasets", json={"displayName": "images_10k", **meta}, timeout=30).json()
    name = str(op["response"]["name"])
    body = {"inputConfig": {"gcsSource": {"inputUris": ["gs://bench-console/index.csv"]}}}
    op = s.post(f"{base}/v1/{name}:importData", json=body, timeout=30).json()
    t0 = time.monotonic()
    while not op.get("done"):
        time.sleep(1)
        op = s.get(f"{base}/v1/{op['name']}", timeout=30).json()
    if "error" in op:
        raise RuntimeError(f"the import failed: {op['error']}")
    print(f"imported {images} images in {time.monotonic() - t0:.0f} s", flush=True)
    return name


def time_api(base: str, calls: list[str]) -> float:
    t0 = time.perf_counter()
    for path in calls:
        token = ""
        while True:
            url = f"{base}/v1/{path}" + (f"&pageToken={token}" if token else "")
            page = requests.get(url, timeout=60).json()
            token = page.get("nextPageToken", "")
            if not token or "/operations" not in path:  # the console walks every page of operations only
                break
    return time.perf_counter() - t0


def time_browser(driver: Any, url: str, page: str, drawn: str, pending: str = "") -> dict[str, float]:
    """Seconds from navigation start until ``page`` is drawn with a ``drawn`` element and no ``pending`` one
    (``total``), and its split: ``to_api`` until the page's first /v1 request starts, ``api`` from then to the
    end of the last /v1 response before the page was drawn, ``draw`` from that to the page being drawn."""
    driver.get("about:blank")
    driver.get(url)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        done = driver.execute_script(
            "const m = document.getElementById('main');"
            "return m && m.dataset.ready === arguments[0] && document.querySelectorAll(arguments[1]).length > 0"
            " && !(arguments[2] && document.querySelector(arguments[2])) ? performance.now() : null",
            page,
            drawn,
            pending,
        )
        if done:
            calls = driver.execute_script(
                "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/'))"
                ".map((e) => [e.startTime, e.responseEnd])"
            )
            settle(driver)
            ready = float(done)
            before = [c for c in calls if 0 < c[1] <= ready] or [[ready, ready]]
            start, end = min(c[0] for c in before), max(c[1] for c in before)
            return {
                "total": ready / 1000,
                "to_api": start / 1000,
                "api": (end - start) / 1000,
                "draw": (ready - end) / 1000,
            }
        time.sleep(0.02)
    raise RuntimeError(f"{url} was not drawn")


def settle(driver: Any, timeout: float = 60) -> None:
    """Stay on the page until the requests it makes after being drawn (the Datasets page's Last import
    column, the Items tab's thumbnails, the running badge) are answered, so that the next run does not
    share the server with them."""
    end = time.monotonic() + timeout
    busy = (
        "return !!document.querySelector('td.last-import.pending') || [...document.images]"
        ".some((i) => !i.complete && i.getBoundingClientRect().top < innerHeight)"
    )
    while time.monotonic() < end and driver.execute_script(busy):
        time.sleep(0.05)
    time.sleep(0.3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.e2e.browser import CHROMEDRIVER, CHROMIUM

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        proc = start(Path(tmp), port)
        try:
            images = fill(base, Path(tmp), args.datasets, args.images)
            pages = {
                f"Datasets page, {args.datasets:,} datasets (first 100 rows)": (
                    [f"{PARENT}/datasets?pageSize=100"],
                    f"{base}/ui/{PARENT}/datasets",
                    "datasets",
                    "#datasets tbody tr[data-name]",
                    "",
                ),
                "the same with its Last import column filled": (
                    [f"{PARENT}/datasets?pageSize=100", f"{PARENT}/operations?pageSize=1000"],
                    f"{base}/ui/{PARENT}/datasets",
                    "datasets",
                    "#datasets tbody tr[data-name]",
                    "td.last-import.pending",
                ),
                f"Items tab, {args.images:,}-image dataset": (
                    [f"{images}?x=1", f"{images}/examples?pageSize=24"],
                    f"{base}/ui/{images}?tab=items",
                    "dataset",
                    "#items figure.item",
                    "",
                ),
            }
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service

            opts = webdriver.ChromeOptions()
            opts.binary_location = CHROMIUM
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
                opts.add_argument(arg)
            driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
            rows = []
            try:
                for title, (calls, url, page, drawn, pending) in pages.items():
                    time_api(base, calls)
                    time_browser(driver, url, page, drawn, pending)
                    api = [time_api(base, calls) for _ in range(args.runs)]
                    runs = [time_browser(driver, url, page, drawn, pending) for _ in range(args.runs)]
                    browser = [r["total"] for r in runs]
                    rows.append(
                        {
                            "page": title,
                            "api_median_s": round(statistics.median(api), 3),
                            "api_max_s": round(max(api), 3),
                            "browser_median_s": round(statistics.median(browser), 3),
                            "browser_max_s": round(max(browser), 3),
                            **{
                                f"browser_{k}_median_s": round(statistics.median(r[k] for r in runs), 3)
                                for k in ("to_api", "api", "draw")
                            },
                        }
                    )
            finally:
                driver.quit()
        finally:
            proc.terminate()
            proc.wait(30)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    lines = [
        "| page | API calls, median (max) | drawn in Chromium, median (max) "
        "| in Chromium: to API call / API calls / drawing |",
        "|---|---|---|---|",
        *(
            f"| {r['page']} | {r['api_median_s']:.3f} s ({r['api_max_s']:.3f}) | "
            f"{r['browser_median_s']:.3f} s ({r['browser_max_s']:.3f}) | "
            f"{r['browser_to_api_median_s']:.3f} / {r['browser_api_median_s']:.3f} / "
            f"{r['browser_draw_median_s']:.3f} s |"
            for r in rows
        ),
    ]
    load = os.getloadavg()
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"load average {load[0]:.1f} at the end"
    )
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"time": stamp, "machine": machine, "runs": args.runs, "results": rows}
    (RESULTS / f"console-{stamp}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"console-{stamp}.md").write_text(
        f"# Console render times {stamp} ({machine})\n\n" + "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
