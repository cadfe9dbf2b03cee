"""Sentiment (sst5) and multi-label classification (goemotions) through the official client."""

from __future__ import annotations

import json

import pytest

from tests.e2e.clients import PARENT, clients


# Measured 60 s of the default run, so under --slow. Its fast path: the docker export test trains and serves a
# sentiment model; the multi-label flow below stays.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sentiment_sst5_v1beta1(server) -> None:
    _, client, predictor = clients("v1beta1", server.endpoint)
    dataset = client.create_dataset(
        parent=PARENT, dataset={"display_name": "sst5", "text_sentiment_dataset_metadata": {"sentiment_max": 4}}
    )
    assert dataset.name.rsplit("/", 1)[-1].startswith("TST")
    op = client.import_data(
        name=dataset.name, input_config={"gcs_source": {"input_uris": ["gs://automill-bench/sst5/sst5.csv"]}}
    )
    op.result(timeout=300)
    assert client.get_dataset(name=dataset.name).example_count > 11_000
    model = client.create_model(
        parent=PARENT,
        model={
            "display_name": "sst5_model",
            "dataset_id": dataset.name.rsplit("/", 1)[-1],
            "text_sentiment_model_metadata": {},
        },
    ).result(timeout=600)
    assert model.name.rsplit("/", 1)[-1].startswith("TST")
    evals = list(client.list_model_evaluations(parent=model.name))
    assert len(evals) == 6  # overall + one per sentiment value 0..4
    overall = next(e for e in evals if not e.annotation_spec_id)
    m = overall.text_sentiment_evaluation_metrics
    n_test = overall.evaluated_example_count
    assert 2150 < n_test <= 2210  # the official TEST split, a few duplicate sentences merged into TRAIN
    assert 0.3 < m.precision <= 1 and 0.3 < m.recall <= 1 and 0 < m.mean_absolute_error < 1.2
    assert m.mean_squared_error >= m.mean_absolute_error * 0.5 and 0.3 < m.quadratic_kappa <= 1
    assert m.linear_kappa > 0 and len(m.confusion_matrix.row) == 5
    assert sum(sum(r.example_count) for r in m.confusion_matrix.row) == n_test
    per_value = [e for e in evals if e.annotation_spec_id]
    assert sorted(e.display_name for e in per_value) == ["0", "1", "2", "3", "4"]
    assert not per_value[0].text_sentiment_evaluation_metrics.confusion_matrix.row

    client.deploy_model(name=model.name).result(timeout=60)
    resp = predictor.predict(
        name=model.name,
        payload={
            "text_snippet": {
                "content": "a wonderful , moving and beautifully acted masterpiece",
                "mime_type": "text/plain",
            }
        },
    )
    assert len(resp.payload) == 1
    assert resp.payload[0].text_sentiment.sentiment >= 3
    assert -1.0 <= float(resp.metadata["sentiment_score"]) <= 1.0
    bad = predictor.predict(name=model.name, payload={"text_snippet": {"content": "a dull , tedious and awful mess"}})
    assert bad.payload[0].text_sentiment.sentiment <= 1

    work = server.bucket_path("work")
    work.mkdir(parents=True)
    (work / "a.txt").write_text("an utterly delightful film")
    (work / "in.csv").write_text("gs://work/a.txt\n")
    bp = predictor.batch_predict(
        name=model.name,
        input_config={"gcs_source": {"input_uris": ["gs://work/in.csv"]}},
        output_config={"gcs_destination": {"output_uri_prefix": "gs://work/out"}},
    )
    bp.result(timeout=120)
    out = work / bp.metadata.batch_predict_details.output_info.gcs_output_directory[len("gs://work/") :]
    line = json.loads((out / "text_sentiment_1.jsonl").read_text().splitlines()[0])
    assert line["annotations"][0]["textSentiment"]["sentiment"] >= 2

    ex = client.export_data(name=dataset.name, output_config={"gcs_destination": {"output_uri_prefix": "gs://work/ex"}})
    ex.result(timeout=300)
    exdir = work / ex.metadata.export_data_details.output_info.gcs_output_directory[len("gs://work/") :]
    first = (exdir / "text_sentiment_1.csv").read_text().splitlines()[0].split(",")
    assert first[0] in ("TRAIN", "VALIDATE", "TEST") and first[2] in {"0", "1", "2", "3", "4"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_multilabel_goemotions_v1(server) -> None:
    mod, client, predictor = clients("v1", server.endpoint)
    dataset = client.create_dataset(
        parent=PARENT,
        dataset={
            "display_name": "goemotions",
            "text_classification_dataset_metadata": {"classification_type": "MULTILABEL"},
        },
    ).result(timeout=30)
    op = client.import_data(
        name=dataset.name,
        input_config={"gcs_source": {"input_uris": ["gs://automill-bench/goemotions/goemotions.csv"]}},
    )
    op.result(timeout=300)
    model = client.create_model(
        parent=PARENT,
        model={
            "display_name": "emotions",
            "dataset_id": dataset.name.rsplit("/", 1)[-1],
            "text_classification_model_metadata": {},
        },
    ).result(timeout=600)
    assert model.text_classification_model_metadata.classification_type == mod.ClassificationType.MULTILABEL
    evals = list(client.list_model_evaluations(parent=model.name, filter=""))
    assert len(evals) == 29
    overall = next(iter(client.list_model_evaluations(parent=model.name, filter="NOT annotation_spec_id:*")))
    m = overall.classification_evaluation_metrics
    assert m.au_prc > 0.3 and not m.confusion_matrix.row  # no confusion matrix for MULTILABEL
    client.deploy_model(name=model.name).result(timeout=60)
    resp = predictor.predict(
        name=model.name,
        payload={"text_snippet": {"content": "Thank you so much, this is great!"}},
        params={"score_threshold": "0"},
    )
    assert len(resp.payload) == 28
    assert resp.payload[0].display_name in ("gratitude", "admiration", "joy")
    tuned = predictor.predict(
        name=model.name, payload={"text_snippet": {"content": "Thank you so much, this is great!"}}
    )
    assert 1 <= len(tuned.payload) < 28 and "gratitude" in {p.display_name for p in tuned.payload}
