import json

import pytest

from schemas.mixture import (MixtureWeightsError, load_mixture_weights, make_mixture_weights, validate_mixture_weights,
                             write_mixture_weights)


def _doc(weights, **prov):
    return {"format": "refinery-mixture-weights-v1", "weights": weights,
            "provenance": {"method": "doremi", "inputs": ["runs/x/manifest.json"], "date": "2026-11-28", **prov}}


def test_valid_document_round_trips(tmp_path):
    m = validate_mixture_weights(_doc({"books": 0.25, "wikipedia": 0.75}, notes="ref model 120M"))
    path = tmp_path / "w.json"
    write_mixture_weights(str(path), m)
    assert load_mixture_weights(str(path)) == m
    assert json.loads(path.read_text())["provenance"]["notes"] == "ref model 120M"


def test_sum_must_be_one_within_1e6():
    validate_mixture_weights(_doc({"a": 0.5, "b": 0.5 + 9e-7}))
    with pytest.raises(MixtureWeightsError, match="sum to"):
        validate_mixture_weights(_doc({"a": 0.5, "b": 0.5 + 2e-6}))


@pytest.mark.parametrize("doc, where", [
    (_doc({"books": 1.5}), "weights/books"),
    (_doc({"books": -0.1, "c4": 1.1}), "weights/books"),
    (_doc({}), "weights"),
    (_doc({"Books!": 1.0}), "weights"),
    ({**_doc({"books": 1.0}), "extra": 1}, "top level"),
    ({"format": "refinery-mixture-weights-v1", "weights": {"books": 1.0}}, "top level"),
    (_doc({"books": 1.0}, date="yesterday"), "provenance/date"),
    (_doc({"books": 1.0}, method=""), "provenance/method"),
])
def test_schema_errors_name_the_place(doc, where):
    with pytest.raises(MixtureWeightsError, match=where):
        validate_mixture_weights(doc)


def test_make_normalizes_counts(tmp_path):
    m = make_mixture_weights({"books": 3, "c4": 1}, method="natural", inputs=["m.json"], normalize=True)
    assert m.weights == {"books": 0.75, "c4": 0.25} and m.date.endswith("Z")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(MixtureWeightsError, match="not JSON"):
        load_mixture_weights(str(bad))
