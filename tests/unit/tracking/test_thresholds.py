"""churnops.tracking.thresholds: a version's decision threshold, read from its tag (0.5 without one)."""

from __future__ import annotations

import pytest

from churnops.config import RegistryConfig
from churnops.tracking.registry import register_version
from churnops.tracking.thresholds import (
    DEFAULT_THRESHOLD,
    THRESHOLD_RULE_TAG,
    THRESHOLD_TAG,
    threshold_tags,
    version_threshold,
)
from tests.helpers import log_tiny_models

REGISTRY = RegistryConfig(model_name="unit-test-threshold")


def test_a_threshold_tag_reads_back_as_the_same_float():
    chosen = 0.37123456789012345
    tags = threshold_tags(chosen, "cost:fn=5,fp=1")
    assert tags == {THRESHOLD_TAG: repr(chosen), THRESHOLD_RULE_TAG: "cost:fn=5,fp=1"}
    assert version_threshold(tags) == chosen
    assert version_threshold({THRESHOLD_TAG: "0.3712"}) == 0.3712


def test_a_version_without_the_tag_decides_at_one_half():
    assert version_threshold({}) == DEFAULT_THRESHOLD == 0.5
    assert version_threshold({THRESHOLD_TAG: ""}) == 0.5


@pytest.mark.parametrize("text", ["high", "1.5", "-0.1", "nan"])
def test_a_tag_that_is_no_threshold_is_an_error_not_a_default(text):
    with pytest.raises(ValueError, match="not a threshold"):
        version_threshold({THRESHOLD_TAG: text})


def test_a_version_number_needs_the_registry():
    with pytest.raises(ValueError, match="pass the registry"):
        version_threshold("3")


def test_registered_versions_with_and_without_the_tag(churnops_home):
    from mlflow import MlflowClient

    (run_a, uri_a), (run_b, uri_b) = log_tiny_models(2)
    tagged, _ = register_version(uri_a, run_a, REGISTRY, threshold_tags(0.2875, "max_f1"))
    older, _ = register_version(uri_b, run_b, REGISTRY, {"churnops.family": "lr"})
    assert version_threshold(tagged, REGISTRY) == version_threshold(int(tagged), REGISTRY) == 0.2875
    assert version_threshold(MlflowClient().get_model_version(REGISTRY.model_name, tagged)) == 0.2875
    assert version_threshold(older, REGISTRY) == 0.5
