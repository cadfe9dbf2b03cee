"""Issue 23, the web console (fast path): served by a real ``automill serve``, driven in a real Chromium.

- serving: ``/`` redirects to the default project's datasets page; every page URL answers the shell,
  whose relative ``<base href>`` lets the console work behind a path prefix (checked through a real
  prefix-stripping proxy);
- sign-in (issue 24): with keys, the console signs in with one; the session cookie is HttpOnly,
  SameSite=Strict and Secure behind TLS; a request that changes something with the cookie but
  without its CSRF token is refused 403, cross-site or not;
- the Datasets page (bad input shows the API's message next to the field, create, import from a
  bucket, delete with confirmation), the Items tab (labels per split, filters, paging, boxes drawn
  on images, entity spans highlighted) and the Operations page;
- a bucket folder listed and saved by Chromium as one zip (the Export tab's and the batch prediction
  panel's "Download zip"), and the train panel's budget limits, which are the ones the API enforces.

The long flows (training, evaluation, deploy, prediction, export) are in test_console_slow.py.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Server, serving
from tests.e2e.browser import all_css, chromium, css, downloaded, ready, screenshot, severe_errors, wait_for

PARENT = "projects/my-project/locations/us-central1"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("console"), workers=1, text_budget=5) as server:
        yield server


def create_dataset(server: Server, name: str, meta: dict[str, Any], uri: str = "") -> str:
    op = requests.post(f"{server.endpoint}/v1/{PARENT}/datasets", json={"displayName": name, **meta}, timeout=30).json()
    ds = str(op["response"]["name"])
    if uri:
        body = {"inputConfig": {"gcsSource": {"inputUris": [uri]}}}
        op = requests.post(f"{server.endpoint}/v1/{ds}:importData", json=body, timeout=30).json()
        end = time.monotonic() + 120
        while not op.get("done") and time.monotonic() < end:
            time.sleep(0.5)
            op = requests.get(f"{server.endpoint}/v1/{op['name']}", timeout=30).json()
        assert op.get("done") and "error" not in op, op
    return ds


# -- serving ---------------------------------------------------------------------------------------
def test_root_redirects_and_every_page_url_answers_the_shell(console: Server) -> None:
    r = requests.get(f"{console.endpoint}/", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["location"] == f"ui/{PARENT}/datasets"
    page = requests.get(f"{console.endpoint}/ui/{PARENT}/datasets/TCN123?tab=items", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<base href="../../../../../../">' in page.text  # six folders up: the server's root
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert requests.get(f"{console.endpoint}/ui/static/app.js", timeout=10).status_code == 200
    missing = requests.get(f"{console.endpoint}/ui/static/nothing.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


class _PrefixProxy(BaseHTTPRequestHandler):
    """A reverse proxy that serves the Automill at ``upstream`` under ``/automill/`` (as nginx would)."""

    upstream = ""

    def _forward(self) -> None:
        if not self.path.startswith("/automill/"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = self.upstream
        if "Origin" in headers:
            headers["Origin"] = f"http://{self.upstream}"
        conn.request(self.command, self.path[len("/automill") :], body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


def test_console_works_behind_a_path_prefix(console: Server) -> None:
    create_dataset(console, "behind_proxy", {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}})
    _PrefixProxy.upstream = f"127.0.0.1:{console.port}"
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _PrefixProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with chromium() as d:
            d.get(f"http://127.0.0.1:{proxy.server_address[1]}/automill/")
            ready(d, "datasets")
            assert d.current_url.endswith(f"/automill/ui/{PARENT}/datasets")
            css(d, "tr[data-name='behind_proxy'] a").click()
            ready(d, "dataset")
            assert "/automill/ui/" in d.current_url and css(d, "nav.tabs a.active").text == "Import"
            assert not severe_errors(d)
    finally:
        proxy.shutdown()


# -- sign-in and CSRF ------------------------------------------------------------------------------
def _create_key(data_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMILL_")}
    out = subprocess.run(
        [sys.executable, "-m", "automill", "keys", "create", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_sign_in_sets_a_strict_cookie_and_mutations_need_the_csrf_token(tmp_path: Path) -> None:
    with serving(tmp_path / "data", workers=0) as server:
        base = server.endpoint
        assert requests.get(f"{base}/ui/session", timeout=10).json()["signedIn"] is True  # keyless: local user
        key = _create_key(server.data_dir, "--project", "team-a", "--role", "editor", "--name", "alice")
        info = requests.get(f"{base}/ui/session", timeout=10).json()
        assert info["keyed"] is True and info["signedIn"] is False
        assert requests.get(f"{base}/v1/projects/team-a/locations/l/datasets", timeout=10).status_code == 401

        bad = requests.post(f"{base}/ui/session", json={"key": "am_000000000000_" + "x" * 43}, timeout=10)
        assert bad.status_code == 401 and bad.json()["error"]["details"][0]["fieldViolations"][0]["field"] == "key"
        assert "set-cookie" not in bad.headers

        r = requests.post(f"{base}/ui/session", json={"key": key}, timeout=10)
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert r.json()["principal"] == {"name": "alice", "role": "editor", "project": "team-a", "anonymous": False}
        token = r.json()["csrfToken"]
        behind_tls = requests.post(
            f"{base}/ui/session", json={"key": key}, headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        assert "; Secure" in behind_tls.headers["set-cookie"]

        jar = {"automill_session": key}
        url = f"{base}/v1/projects/team-a/locations/l/datasets"
        assert requests.get(url, cookies=jar, timeout=10).status_code == 200  # reads need no token
        assert requests.get(url.replace("team-a", "team-b"), cookies=jar, timeout=10).status_code == 403
        body = {"displayName": "x", "textExtractionDatasetMetadata": {}}
        for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": token, "Origin": "https://evil.example"}):
            refused = requests.post(url, json=body, cookies=jar, headers=headers, timeout=10)
            assert refused.status_code == 403, (headers, refused.text)
            assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
        assert "datasets" not in requests.get(url, cookies=jar, timeout=10).json()  # nothing was created
        ok = requests.post(url, json=body, cookies=jar, headers={"X-CSRF-Token": token}, timeout=10)
        assert ok.status_code == 200 and ok.json()["done"], ok.text
        assert requests.get(url, cookies=jar, timeout=10).json()["datasets"][0]["displayName"] == "x"
        # a key in a header needs no token (the official client and curl are not browsers)
        assert requests.post(url, json={**body, "displayName": "y"}, headers={"x-goog-api-key": key}, timeout=10).ok

        with chromium() as d:
            d.get(f"{base}/")
            css(d, "#signin")
            assert d.current_url.endswith("/ui/signin")
            css(d, "#key").send_keys("not a key")
            css(d, "#signin button").click()
            assert "not valid" in css(d, "#signin .field-error").text
            screenshot(d, "signin")
            field = css(d, "#key")
            field.clear()
            field.send_keys(key)
            css(d, "#signin button").click()
            ready(d, "datasets")
            assert d.current_url.endswith("/ui/projects/team-a/locations/us-central1/datasets")
            assert not d.execute_script("return document.cookie")  # HttpOnly: scripts never see the key
            css(d, "#signout").click()
            css(d, "#signin")
            d.get(f"{base}/ui/projects/team-a/locations/us-central1/datasets")
            css(d, "#signin")


# -- pages -----------------------------------------------------------------------------------------
def test_datasets_page_create_import_browse_and_delete(console: Server) -> None:
    with chromium() as d:
        d.get(f"{console.endpoint}/")
        ready(d, "datasets")
        css(d, "#new-dataset").click()
        css(d, "#dataset-name").send_keys("bad name!")
        css(d, "#create-dataset button[type=submit]").click()
        error = css(d, "#create-dataset label[data-field^='display_name'] .field-error")
        assert "dataset.display_name" in error.text and "letters, digits and underscores" in error.text
        assert not any(x["displayName"] == "bad name!" for x in _datasets(console))  # nothing half-created
        name = css(d, "#dataset-name")
        name.clear()
        name.send_keys("spam_filter")
        css(d, "#create-dataset button[type=submit]").click()
        ready(d, "dataset")
        assert d.current_url.endswith("?tab=import")
        css(d, "#import-uri").send_keys("gs://automill-samples/sms_spam/sms_spam.csv")
        css(d, "#import-gcs button").click()
        wait_for(d, lambda: css(d, "#imports .op").get_attribute("data-state") == "succeeded", 120, "import")
        screenshot(d, "import")

        css(d, "nav.tabs a[data-tab='items']").click()
        ready(d, "dataset")
        css(d, "#items .item")
        assert len(all_css(d, "#label-counts rect")) >= 4  # legend + bars per label and split
        assert css(d, "#page-info").text.startswith("1\u201320 of ")
        total = int(css(d, "#page-info").text.split(" of ")[1].replace(",", ""))
        css(d, "#next-page").click()
        wait_for(d, lambda: css(d, "#page-info").text.startswith("21\u2013"), what="page 2")
        labels = {o.get_attribute("textContent"): o.get_attribute("value") for o in all_css(d, "#filter-label option")}
        assert {"spam", "ham"} <= set(labels)
        from selenium.webdriver.support.ui import Select

        Select(css(d, "#filter-label")).select_by_visible_text("spam")
        wait_for(d, lambda: css(d, "#page-info").text.startswith("1\u2013"), what="filtered")
        spam = int(css(d, "#page-info").text.split(" of ")[1].replace(",", ""))
        assert 0 < spam < total
        assert all("spam" in c.text for c in all_css(d, "#items .item .chips"))
        Select(css(d, "#filter-use")).select_by_value("TEST")
        wait_for(
            d,
            lambda: (splits := all_css(d, "#items .item .split")) and all(c.text == "test" for c in splits),
            what="only TEST examples",
        )
        assert "mlUse=TEST" in d.current_url
        screenshot(d, "items-text")

        d.get(f"{console.endpoint}/ui/{PARENT}/datasets")
        ready(d, "datasets")
        row = css(d, "tr[data-name='spam_filter']")
        wait_for(d, lambda: "succeeded" in row.find_element("css selector", "td.last-import").text, what="last import")
        assert "Text classification (single-label)" in row.text
        assert row.find_element("css selector", "td.num").text == f"{total:,}"  # ListDatasets' exampleCount
        screenshot(d, "datasets")

        d.get(f"{console.endpoint}/ui/{PARENT}/operations")
        ready(d, "operations")
        css(d, "#operations tbody tr[data-op]")
        kinds = [r.text for r in all_css(d, "#operations tbody tr")]
        assert any("Import" in k and "succeeded" in k for k in kinds), kinds
        from selenium.webdriver.support.ui import Select as S

        S(css(d, "#filter-kind")).select_by_value("createDatasetDetails")
        wait_for(
            d, lambda: all("Create dataset" in r.text for r in all_css(d, "#operations tbody tr")), what="kind filter"
        )
        screenshot(d, "operations")

        d.get(f"{console.endpoint}/ui/{PARENT}/datasets")
        ready(d, "datasets")
        ds_id = css(d, "tr[data-name='spam_filter'] [data-delete]").get_attribute("data-delete")
        css(d, f"[data-delete='{ds_id}']").click()
        css(d, f"[data-confirm='{ds_id}']").click()
        wait_for(d, lambda: not all_css(d, "tr[data-name='spam_filter']"), 60, "deleted")
        assert not any(x["displayName"] == "spam_filter" for x in _datasets(console))
        assert not severe_errors(d)


def _datasets(server: Server) -> list[dict[str, Any]]:
    return list(requests.get(f"{server.endpoint}/v1/{PARENT}/datasets", timeout=10).json().get("datasets", []))


def test_items_draw_boxes_on_images_and_highlight_entity_spans(console: Server) -> None:
    boxes = create_dataset(
        console, "raccoons", {"imageObjectDetectionDatasetMetadata": {}}, "gs://automill-samples/raccoons/raccoons.csv"
    )
    ents = create_dataset(
        console, "entities", {"textExtractionDatasetMetadata": {}}, "gs://automill-samples/entities/entities.csv"
    )
    with chromium() as d:
        d.get(f"{console.endpoint}/ui/{boxes}?tab=items")
        ready(d, "dataset")
        css(d, "#items figure.item")
        wait_for(
            d,
            lambda: all(i.get_attribute("naturalWidth") not in (None, "0") for i in all_css(d, "#items img")),
            30,
            "images",
        )
        drawn = all_css(d, "#items rect.box")
        assert len(drawn) >= len(all_css(d, "#items figure.item")) and drawn[0].get_attribute("data-label") == "raccoon"
        w = float(drawn[0].get_attribute("width"))
        assert 0 < w <= 1  # normalized coordinates over the image
        screenshot(d, "items-boxes")

        d.get(f"{console.endpoint}/ui/{ents}?tab=items")
        ready(d, "dataset")
        css(d, "#items mark.entity")
        marks = all_css(d, "#items mark.entity")
        assert {m.get_attribute("data-label") for m in marks} >= {"PER", "LOC"}
        colours = {m.value_of_css_property("border-bottom-color") for m in marks}
        assert len(colours) >= 2  # one colour per entity type
        screenshot(d, "items-entities")
        assert not severe_errors(d)
        status = requests.get(f"{console.endpoint}/v1/{ents}/examples/1:media", timeout=10)
        assert status.status_code == 404 and status.json()["error"]["status"] == "NOT_FOUND"  # text has no image


def test_upload_files_then_import_with_progress_and_partial_failures(console: Server, tmp_path: Path) -> None:
    texts = tmp_path / "reviews.csv"
    good = [
        f"TRAIN,great product number {i},good" if i % 2 else f"TRAIN,awful product number {i},bad" for i in range(12)
    ]
    texts.write_text("\n".join([*good, "SOMETIMES,a row with a bad split,good"]) + "\n")
    samples = Path(__file__).resolve().parents[2] / "src" / "automill" / "samples" / "images"
    pictures = sorted(samples.glob("train_cat_*.jpg"))[:3]
    text_ds = create_dataset(
        console, "uploaded_text", {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}
    )
    image_ds = create_dataset(
        console, "uploaded_images", {"imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}
    )
    with chromium() as d:
        d.get(f"{console.endpoint}/ui/{text_ds}?tab=import")
        ready(d, "dataset")
        dest = css(d, "#upload-dest")
        dest.clear()
        dest.send_keys("gs://console-uploads/a/../../escape")
        css(d, "#upload-files").send_keys(str(texts))
        css(d, "#import-upload button[type=submit]").click()
        refused = css(d, "#import-upload label[data-field^='prefix'] .field-error").text  # the server's answer
        assert "prefix" in refused and ".." in refused, refused
        assert not all_css(d, "#imports .op")
        dest.clear()
        dest.send_keys("gs://console-uploads/reviews/")
        css(d, "#import-upload button[type=submit]").click()
        op = wait_for(
            d,
            lambda: [o for o in all_css(d, "#imports .op") if o.get_attribute("data-state") != "running"],
            120,
            "import",
        )
        assert op[0].get_attribute("data-state") == "succeeded"
        assert "uploaded 1 files" in css(d, "#upload-progress").text
        failures = css(d, "#imports .failures").text
        assert "1 partial failures" in failures and "SOMETIMES" in failures, failures
        screenshot(d, "import-partial-failures")

        d.get(f"{console.endpoint}/ui/{image_ds}?tab=import")
        ready(d, "dataset")
        css(d, "#upload-files").send_keys("\n".join(str(p) for p in pictures))
        css(d, "#upload-label").send_keys("cat")
        css(d, "#import-upload button[type=submit]").click()
        op = wait_for(
            d,
            lambda: [o for o in all_css(d, "#imports .op") if o.get_attribute("data-state") != "running"],
            120,
            "import",
        )
        assert op[0].get_attribute("data-state") == "succeeded", op[0].text
        d.get(f"{console.endpoint}/ui/{image_ds}?tab=items")
        ready(d, "dataset")
        wait_for(d, lambda: len(all_css(d, "#items figure.item")) == len(pictures), what="uploaded images")
        assert all("cat" in c.text for c in all_css(d, "#items .chips"))
        assert not severe_errors(d)


def test_a_folder_is_listed_and_downloaded_as_one_zip_in_the_browser(console: Server, tmp_path: Path) -> None:
    """The console's folder view (what the Export tab and the batch prediction panel show once their
    operation is done), on a folder written here: its files listed, and "Download zip" saved by Chromium."""
    folder = console.bucket_path("console-exports") / "model-export-m-20240101"
    (folder / "labels").mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"TFL3" + bytes(range(256)) * 40)
    (folder / "labels" / "dict.txt").write_text("cat\ndog\n")
    saved = tmp_path / "downloads"
    saved.mkdir()
    with chromium(downloads=saved) as d:
        d.get(f"{console.endpoint}/ui/{PARENT}/operations")
        ready(d, "operations")
        d.execute_async_script(
            """const done = arguments[arguments.length - 1];
            import(new URL("ui/static/model.js", document.baseURI).href).then(async (m) => {
              const main = document.getElementById("main");
              main.append(await m.folderView({ name: arguments[0] + "/models/ICN1" }, arguments[1], "t"));
              done();
            });""",
            PARENT,
            "gs://console-exports/model-export-m-20240101/",
        )
        rows = wait_for(d, lambda: all_css(d, "#t-files tr[data-file]"), what="the listed files")
        assert [r.get_attribute("data-file") for r in rows] == ["labels/dict.txt", "model.tflite"]
        link = css(d, "#t-download")
        assert "2 files" in link.text
        link.click()
        archive = zipfile.ZipFile(downloaded(saved, ".zip"))
        assert sorted(archive.namelist()) == ["labels/dict.txt", "model.tflite"]
        assert archive.read("model.tflite").startswith(b"TFL3")
        # A folder the server refuses to read shows its reason instead of a link.
        d.execute_async_script(
            """const done = arguments[arguments.length - 1];
            import(new URL("ui/static/model.js", document.baseURI).href).then(async (m) => {
              const view = await m.folderView({ name: arguments[0] + "/models/ICN1" }, arguments[1], "u");
              document.getElementById("main").append(view);
              done();
            });""",
            PARENT,
            "gs://console-exports/nothing-here/",
        )
        assert "has no files" in css(d, "#u-files .field-error").text
        assert not all_css(d, "#u-download")


def test_train_panel_budget_limits_are_the_ones_the_api_enforces(console: Server) -> None:
    """The panel's numbers come from the session info, which services.models computes; the API answers
    to exactly those bounds (checked on empty datasets: a budget the API accepts then fails on the
    missing examples, FAILED_PRECONDITION, instead of on the budget, INVALID_ARGUMENT)."""
    budgets = requests.get(f"{console.endpoint}/ui/session", timeout=10).json()["budgets"]
    cases = {
        "textClassificationModelMetadata": {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        "imageObjectDetectionModelMetadata": {"imageObjectDetectionDatasetMetadata": {}},
    }
    for key, meta in cases.items():
        limits = budgets[key]
        assert limits["min"] == 1 and limits["max"] > limits["min"] and limits["default"] > 0, limits
        ds = create_dataset(console, f"budget_{key[:4]}", meta).rsplit("/", 1)[1]
        for budget, status in (
            (limits["max"] + 1, "INVALID_ARGUMENT"),
            (limits["min"] - 2, "INVALID_ARGUMENT"),
            (limits["max"], "FAILED_PRECONDITION"),
            (limits["min"], "FAILED_PRECONDITION"),
            (0, "FAILED_PRECONDITION"),  # 0: the server's default
        ):
            body = {"displayName": "b", "datasetId": ds, key: {"trainBudgetMilliNodeHours": str(budget)}}
            err = requests.post(f"{console.endpoint}/v1/{PARENT}/models", json=body, timeout=30).json()["error"]
            assert err["status"] == status, (key, budget, err)
            if status == "INVALID_ARGUMENT":
                assert "budget" in err["details"][0]["fieldViolations"][0]["field"].lower(), err
    text = budgets["textClassificationModelMetadata"]
    with chromium() as d:
        d.get(f"{console.endpoint}/ui/{PARENT}/datasets")
        ready(d, "datasets")
        css(d, "tr[data-name='budget_text'] a").click()
        ready(d, "dataset")
        css(d, "nav.tabs a[data-tab='train']").click()
        ready(d, "dataset")
        css(d, "#train-new").click()
        shown = css(d, "#budget-limits").text
        assert f"accepts {text['min']:,} to {text['max']:,}" in shown and f"default, {text['default']:,}" in shown, (
            shown
        )
        assert css(d, "#budget").get_attribute("max") == str(text["max"])
