"""Issue 23, the web console's long flows in a real Chromium (``--slow``): train from the "Train new
model" panel with a small budget, watch the progress, read the evaluation (threshold slider, PR
curve, confusion matrix), resume training, deploy, try a prediction and see it drawn, batch predict,
export and download the zip; for text classification, entity extraction (text and PDF), sentiment,
image classification (the seed's whole flow, from uploading the images) and object detection."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Server, serving
from tests.e2e.browser import all_css, chromium, css, downloaded, ready, screenshot, severe_errors, wait_for
from tests.e2e.test_console import create_dataset

pytestmark = pytest.mark.slow
SAMPLES = Path(__file__).resolve().parents[2] / "src" / "automill" / "samples"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("console-slow"), workers=2, text_budget=5) as server:
        yield server


def train_in_panel(d: Any, server: Server, dataset: str, model_type: str, budget: int, watch: str = "") -> str:
    """Train from the Train tab's side panel; -> the new model's ID once trained. ``watch``: also see the
    running training's progress bar (and take that screenshot)."""
    d.get(f"{server.endpoint}/ui/{dataset}?tab=train")
    ready(d, "dataset")
    before = {
        m.get_attribute("data-model") or m.get_attribute("data-op") for m in all_css(d, ".card.model, .card.training")
    }
    css(d, "#train-new").click()
    field = css(d, "#budget")
    assert "Recommended for" in css(d, "#budget-help").text
    field.clear()
    field.send_keys("-5")
    css(d, "#start-training").click()  # the API's limit, next to the field
    assert "trainBudgetMilliNodeHours" in css(d, "label[data-field^='train_budget'] .field-error").text
    field.clear()
    field.send_keys(str(budget))
    css(d, f"input[value='{model_type}']").click()
    screenshot(d, "train-panel")
    css(d, "#start-training").click()
    if watch:
        running = wait_for(
            d,
            lambda: d.execute_script(
                "const c = document.querySelector(\".card.training[data-state='running']\");"
                "return c && c.querySelector('.progress[aria-valuenow]') ? c.textContent : null"
            ),
            120,
            "a running training's progress",
        )
        assert "s elapsed" in running and "%" in running, running
        wait_for(  # for the picture: a training under way (or over already)
            d,
            lambda: d.execute_script(
                "const p = document.querySelector(\".card.training[data-state='running'] .progress\");"
                "return !p || Number(p.getAttribute('aria-valuenow')) > 0"
            ),
            120,
            "progress over 0%",
        )
        screenshot(d, watch)
    found = str(
        wait_for(
            d,
            lambda: next(
                (
                    m.get_attribute("data-model") or f"failed: {m.text}"
                    for m in all_css(d, ".card.model, .card.training[data-state='failed']")
                    if (m.get_attribute("data-model") or m.get_attribute("data-op")) not in before
                ),
                None,
            ),
            600,
            "the trained model",
        )
    )
    assert not found.startswith("failed"), found  # a training that fails shows why; no waiting it out
    return found


def test_text_classification_train_evaluate_resume_deploy_predict(console: Server, tmp_path: Path) -> None:
    ds = create_dataset(
        console,
        "sms",
        {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        "gs://automill-samples/sms_spam/sms_spam.csv",
    )
    batch = console.bucket_path("console-batch")
    batch.mkdir(parents=True)
    (batch / "in.csv").write_text("WINNER! Claim your prize now\nsee you at lunch tomorrow?\nok thanks\n")
    saved = tmp_path / "downloads"
    saved.mkdir()
    with chromium(downloads=saved) as d:
        model_id = train_in_panel(d, console, ds, "mobile-low-latency-1", 5)
        card = css(d, f".card.model[data-model='{model_id}']")
        assert "mobile-low-latency-1" in card.text and "stop reason" in card.text
        screenshot(d, "train")
        css(d, f"[data-resume='{model_id}']").click()  # eligible: trained just now, same labels
        assert model_id in css(d, "#base-model").text
        css(d, "#budget").clear()
        css(d, "#budget").send_keys("3")
        css(d, "#start-training").click()
        resumed = wait_for(
            d,
            lambda: next((m for m in all_css(d, ".card.model") if f"resumed from {model_id}" in m.text), None),
            600,
            "the resumed model",
        )
        assert resumed

        d.get(f"{console.endpoint}/ui/{ds.split('/datasets/')[0]}/models/{model_id}?tab=evaluate")
        ready(d, "model")
        assert all_css(d, "#pr-curve polyline.curve")
        slider = css(d, "#threshold")
        d.execute_script("arguments[0].value = 0.9; arguments[0].dispatchEvent(new Event('input'))", slider)
        assert "Score threshold 0.90" in css(d, "#threshold-readout").text
        assert len(all_css(d, "#confusion rect.cell")) == 4
        assert {r.text.split()[0] for r in all_css(d, "#per-label tbody tr")} == {"ham", "spam"}
        screenshot(d, "evaluate")

        css(d, "nav.tabs a[data-tab='predict']").click()
        ready(d, "model")
        css(d, "#deploy-model").click()
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "DEPLOYED", 300, "deployed")
        css(d, "#predict-text").send_keys("WINNER! Claim your free prize now, text CLAIM to 80086")
        css(d, "#predict").click()
        top = css(d, "#prediction li[data-label]")
        assert top.get_attribute("data-label") == "spam"
        screenshot(d, "predict")
        # Batch prediction: its progress, then the result files listed and downloaded as one zip.
        css(d, "#batch-input").send_keys("gs://console-batch/in.csv")
        css(d, "#batch-output").send_keys("gs://console-batch/out/")
        css(d, "#batch-form button[type=submit]").click()
        rows = wait_for(d, lambda: all_css(d, "#batch-files tr[data-file]"), 300, "the result files")
        assert "text_classification_1.jsonl" in [r.get_attribute("data-file") for r in rows]
        assert "gs://console-batch/out/prediction-" in css(d, "#batch-output-dir").text
        screenshot(d, "batch-predict")
        css(d, "#batch-download").click()
        archive = zipfile.ZipFile(downloaded(saved, ".zip"))
        lines = archive.read("text_classification_1.jsonl").decode().splitlines()
        assert len(lines) == 3 and all('"annotations"' in line for line in lines), lines
        css(d, "#undeploy").click()
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "UNDEPLOYED", 300, "undeployed")
        assert not severe_errors(d)


def test_entity_extraction_prediction_highlights_spans(console: Server, tmp_path: Path) -> None:
    ds = create_dataset(
        console, "ents", {"textExtractionDatasetMetadata": {}}, "gs://automill-samples/entities/entities.csv"
    )
    with chromium() as d:
        model_id = train_in_panel(d, console, ds, "mobile-low-latency-1", 10)
        parent = ds.split("/datasets/")[0]
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=evaluate")
        ready(d, "model")
        assert all_css(d, "#pr-curve polyline.curve") and len(all_css(d, "#per-label tbody tr")) >= 2
        op = requests.post(f"{console.endpoint}/v1/{parent}/models/{model_id}:deploy", json={}, timeout=30).json()
        wait_for(d, lambda: requests.get(f"{console.endpoint}/v1/{op['name']}", timeout=30).json().get("done"), 300)
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=predict")
        ready(d, "model")
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "DEPLOYED", 300, "deployed")
        css(d, "#predict-text").send_keys("Barack Obama visited the University of Paris in France with Angela Merkel .")
        css(d, "#predict").click()
        css(d, "#prediction mark.entity")
        screenshot(d, "predict-entities")
        # A PDF picked from the computer: uploaded to a bucket folder, predicted as a document, and its
        # text layer shown with the spans the model found.
        from fpdf import FPDF

        doc = FPDF()
        doc.add_page()
        doc.set_font("Helvetica", size=14)
        doc.cell(text="Angela Merkel met Barack Obama in Berlin , Germany .")
        doc.output(str(tmp_path / "letter.pdf"))
        css(d, "#predict-text").clear()
        css(d, "#predict-pdf").send_keys(str(tmp_path / "letter.pdf"))
        css(d, "#predict").click()
        wait_for(d, lambda: "Berlin" in css(d, "#prediction p.snippet").text, 60, "the PDF's text")
        assert all_css(d, "#prediction mark.entity"), css(d, "#prediction").text
        screenshot(d, "predict-pdf")
        assert not severe_errors(d)


def test_object_detection_boxes_on_a_prediction_and_export(console: Server) -> None:
    ds = create_dataset(
        console, "raccoons", {"imageObjectDetectionDatasetMetadata": {}}, "gs://automill-samples/raccoons/raccoons.csv"
    )
    with chromium() as d:
        model_id = train_in_panel(d, console, ds, "mobile-low-latency-1", 40)
        parent = ds.split("/datasets/")[0]
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=evaluate")
        ready(d, "model")
        assert "mAP (IoU 0.5)" in css(d, "#metrics").text and all_css(d, "#pr-curve polyline.curve")
        screenshot(d, "evaluate-detection")
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=predict")
        ready(d, "model")
        css(d, "#deploy-model").click()
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "DEPLOYED", 300, "deployed")
        css(d, "#predict-file").send_keys(str(SAMPLES / "raccoons" / "raccoon-2.jpg"))
        d.execute_script(
            "const s = document.getElementById('predict-threshold'); s.value = 0; s.dispatchEvent(new Event('input'))"
        )
        css(d, "#predict").click()
        wait_for(d, lambda: all_css(d, "#prediction rect.box"), 60, "boxes on the prediction")
        screenshot(d, "predict-boxes")
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=export")
        ready(d, "model")
        css(d, "#export").click()
        assert "gs://automill-exports/" in css(d, "#export-dir", timeout=600).text
        screenshot(d, "export")
        assert not severe_errors(d)


@pytest.mark.timeout(1800)
def test_image_classification_seed_flow_upload_train_resume_deploy_predict_export(
    console: Server, tmp_path: Path
) -> None:
    """The seed's whole flow in the console: create an image dataset, upload the images and their CSV
    from the computer, browse the items, train mobile-low-latency-1 on a small budget while watching its
    progress, read the evaluation (PR curve drawn), resume training, deploy, upload an image and see
    its labels, export TF Lite and download the zip, which holds model.tflite."""
    pictures = sorted((SAMPLES / "images").glob("*.jpg"))
    index = tmp_path / "cifar.csv"
    index.write_text(
        (SAMPLES / "images" / "images.csv")
        .read_text()
        .replace("gs://automill-samples/images/", "gs://console-uploads/cifar/")
    )
    saved = tmp_path / "downloads"
    saved.mkdir()
    with chromium(downloads=saved) as d:
        d.get(f"{console.endpoint}/")
        ready(d, "datasets")
        css(d, "#new-dataset").click()
        css(d, "#dataset-name").send_keys("cifar_console")
        from selenium.webdriver.support.ui import Select

        Select(css(d, "#dataset-type")).select_by_value("image-single")
        css(d, "#create-dataset button[type=submit]").click()
        ready(d, "dataset")
        assert d.current_url.endswith("?tab=import")
        ds = d.current_url.split("/ui/", 1)[1].split("?")[0]
        dest = css(d, "#upload-dest")
        dest.clear()
        dest.send_keys("gs://console-uploads/cifar/")
        css(d, "#upload-files").send_keys("\n".join(str(p) for p in [index, *pictures]))
        css(d, "#import-upload button[type=submit]").click()
        op = wait_for(
            d,
            lambda: [o for o in all_css(d, "#imports .op") if o.get_attribute("data-state") != "running"],
            300,
            "the import",
        )
        assert op[0].get_attribute("data-state") == "succeeded", op[0].text
        assert f"uploaded {len(pictures) + 1} files" in css(d, "#upload-progress").text
        screenshot(d, "import")

        d.get(f"{console.endpoint}/ui/{ds}?tab=items")
        ready(d, "dataset")
        wait_for(
            d,
            lambda: (
                (imgs := all_css(d, "#items img"))
                and all(i.get_attribute("naturalWidth") not in (None, "0") for i in imgs)
            ),
            60,
            "thumbnails",
        )
        assert len(all_css(d, "#items figure.item")) == 24 and "of 64" in css(d, "#page-info").text
        assert len(all_css(d, "#label-counts rect")) >= 4  # bars per label and split
        Select(css(d, "#filter-label")).select_by_visible_text("cat")
        wait_for(d, lambda: css(d, "#page-info").text.endswith("of 16"), what="the cat filter")
        assert all("cat" in c.text for c in all_css(d, "#items .chips"))
        screenshot(d, "items-images")

        model_id = train_in_panel(d, console, ds, "mobile-low-latency-1", 30, watch="train-progress")
        card = css(d, f".card.model[data-model='{model_id}']")
        assert "mobile-low-latency-1" in card.text and "stop reason" in card.text
        screenshot(d, "train")
        css(d, f"[data-resume='{model_id}']").click()
        assert model_id in css(d, "#base-model").text
        assert css(d, "input[value='mobile-low-latency-1']").get_attribute("checked")  # the base model's type
        css(d, "#budget").clear()
        css(d, "#budget").send_keys("30")
        css(d, "#start-training").click()
        resumed = wait_for(
            d,
            lambda: next(
                (
                    m.get_attribute("data-model") or m.text
                    for m in all_css(d, ".card.model, .card.training[data-state='failed']")
                    if f"resumed from {model_id}" in m.text or "failed" in (m.get_attribute("data-state") or "")
                ),
                None,
            ),
            600,
            "the resumed model",
        )
        assert resumed.startswith("ICN") and resumed != model_id, resumed

        parent = ds.split("/datasets/")[0]
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=evaluate")
        ready(d, "model")
        assert all_css(d, "#pr-curve polyline.curve") and "Area under the PR curve" in css(d, "#metrics").text
        assert len(all_css(d, "#confusion rect.cell")) == 16  # 4 labels
        assert {r.text.split()[0] for r in all_css(d, "#per-label tbody tr")} == {
            "airplane",
            "automobile",
            "cat",
            "dog",
        }
        screenshot(d, "evaluate-images")

        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=predict")
        ready(d, "model")
        css(d, "#deploy-model").click()
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "DEPLOYED", 300, "deployed")
        css(d, "#predict-file").send_keys(str(SAMPLES / "images" / "test_cat_0247.jpg"))
        css(d, "#predict").click()
        wait_for(d, lambda: len(all_css(d, "#prediction li[data-label]")) == 4, 60, "the four labels")
        labels = [li.get_attribute("data-label") for li in all_css(d, "#prediction li[data-label]")]
        assert sorted(labels) == ["airplane", "automobile", "cat", "dog"]
        assert css(d, "#prediction img.preview").get_attribute("naturalWidth") not in (None, "0")
        screenshot(d, "predict-image")

        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=export")
        ready(d, "model")
        assert Select(css(d, "#export-format")).first_selected_option.get_attribute("value") == "tflite"
        css(d, "#export").click()
        assert "gs://automill-exports/" in css(d, "#export-dir", timeout=600).text
        link = css(d, "#export-download", timeout=60)
        assert "model.tflite" in css(d, "#export-files").text
        screenshot(d, "export")
        link.click()
        archive = zipfile.ZipFile(downloaded(saved, ".zip"))
        assert "model.tflite" in archive.namelist() and archive.testzip() is None
        assert archive.read("model.tflite")[4:8] == b"TFL3"  # a TF Lite flatbuffer
        assert not severe_errors(d)


def test_sentiment_evaluation_and_prediction_views(console: Server) -> None:
    ds = create_dataset(
        console,
        "moods",
        {"textSentimentDatasetMetadata": {"sentimentMax": 2}},
        "gs://automill-samples/sentiment/sentiment.csv",
    )
    with chromium() as d:
        model_id = train_in_panel(d, console, ds, "mobile-low-latency-1", 10)
        parent = ds.split("/datasets/")[0]
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=evaluate")
        ready(d, "model")
        metrics = css(d, "#metrics").text
        for name in ("Mean absolute error", "Mean squared error", "Linear kappa", "Quadratic kappa", "F1"):
            assert name in metrics, metrics
        assert len(all_css(d, "#confusion rect.cell")) == 9  # sentiments 0, 1 and 2
        screenshot(d, "evaluate-sentiment")
        op = requests.post(f"{console.endpoint}/v1/{parent}/models/{model_id}:deploy", json={}, timeout=30).json()
        wait_for(d, lambda: requests.get(f"{console.endpoint}/v1/{op['name']}", timeout=30).json().get("done"), 300)
        d.get(f"{console.endpoint}/ui/{parent}/models/{model_id}?tab=predict")
        ready(d, "model")
        wait_for(d, lambda: css(d, "#deployment-state").get_attribute("data-state") == "DEPLOYED", 300, "deployed")
        css(d, "#predict-text").send_keys("I love this, thank you so much, it is wonderful!")
        css(d, "#predict").click()
        shown = css(d, "#prediction .sentiment")
        assert shown.get_attribute("data-sentiment") in ("0", "1", "2") and "of 2" in shown.text
        screenshot(d, "predict-sentiment")
        css(d, "#predict-text").clear()
        css(d, "#predict").click()  # an empty text: the API's message next to the field
        assert "empty" in css(d, "#predict-form label[data-field^='payload'] .field-error").text
        assert not severe_errors(d)
