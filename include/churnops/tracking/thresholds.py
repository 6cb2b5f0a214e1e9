"""A registered version's decision threshold: the tags that record it and the one way to read it.

Training tags each version with ``churnops.threshold`` (the float as text, exactly as chosen)
and ``churnops.threshold_rule`` (e.g. ``max_f1`` or ``cost:fn=5,fp=1``). A version without
the tag (registered before thresholds were chosen) decides at :data:`DEFAULT_THRESHOLD`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from churnops.config import RegistryConfig

__all__ = ["DEFAULT_THRESHOLD", "THRESHOLD_RULE_TAG", "THRESHOLD_TAG", "threshold_tags", "version_threshold"]

THRESHOLD_TAG = "churnops.threshold"
THRESHOLD_RULE_TAG = "churnops.threshold_rule"
DEFAULT_THRESHOLD = 0.5
"""The threshold of a version that has no :data:`THRESHOLD_TAG`."""


def threshold_tags(threshold: float, rule: str) -> dict[str, str]:
    """The version tags recording a threshold and its rule.

    Args:
        threshold: the decision threshold.
        rule: the rule's label (:attr:`churnops.config.ThresholdConfig.label`).

    Returns:
        :data:`THRESHOLD_TAG` (``repr`` of the float: it reads back as the same float) and
        :data:`THRESHOLD_RULE_TAG`.
    """
    return {THRESHOLD_TAG: repr(float(threshold)), THRESHOLD_RULE_TAG: rule}


def version_threshold(version: Any, registry: RegistryConfig | None = None) -> float:
    """The decision threshold of a registered version: its tag, else :data:`DEFAULT_THRESHOLD`.

    Args:
        version: an MLflow ``ModelVersion`` (anything with ``tags``), a mapping of its tags, or
            its number (as str or int) together with ``registry``.
        registry: the registered model's name, when ``version`` is a number.

    Returns:
        The threshold.

    Raises:
        ValueError: the tag is not a number in [0, 1], or a version number comes without ``registry``.
    """
    if isinstance(version, Mapping):
        tags = version
    elif isinstance(version, str | int):
        if registry is None:
            raise ValueError(f"version {version} given by number: pass the registry to look up its tags")
        from churnops.tracking.registry import version_tags

        tags = version_tags(registry, str(version))
    else:
        tags = version.tags
    text = tags.get(THRESHOLD_TAG)
    if text is None or text == "":
        return DEFAULT_THRESHOLD
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        which = getattr(version, "version", version)
        raise ValueError(f"tag {THRESHOLD_TAG}={text!r} of version {which} is not a threshold in [0, 1]")
    return value
