"""churnops.config: loading, path resolution, defaults and schema errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from churnops.config import (
    DEFAULT_CONFIG_PATH,
    MODEL_FAMILIES,
    ChurnopsConfig,
    ConfigError,
    churnops_home,
    load_config,
    resolve_config_path,
)
from churnops.errors import ChurnopsInputError
from tests.helpers import TELCO_CONFIG, TELCO_DATA, write_config

MINIMAL = {
    "dataset": {
        "name": "toy",
        "id_column": "id",
        "target": "y",
        "positive_label": "yes",
        "sources": [{"name": "main", "path": "main.csv", "columns": ["age", "plan", "y"]}],
        "numeric_features": ["age"],
        "categorical_features": ["plan"],
    },
}


def raw_config(**sections) -> dict:
    """MINIMAL with whole sections added or replaced."""
    raw = copy.deepcopy(MINIMAL)
    raw.update(copy.deepcopy(sections))
    return raw


def dump(path: Path, raw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- the bundled Telco config ------------------------------------------------------------------------------------


def test_default_config_is_telco_with_absolute_existing_sources():
    config = load_config()
    assert resolve_config_path() == TELCO_CONFIG == DEFAULT_CONFIG_PATH
    assert config.dataset.name == "telco"
    assert [s.name for s in config.dataset.sources] == ["customers", "services", "accounts"]
    for source in config.dataset.sources:
        assert source.path.is_absolute()
        assert source.path.is_file()
        assert source.path == (TELCO_DATA / source.path.name).resolve()
    assert config.experiment_name == "churnops-telco"


# --- which file is read ------------------------------------------------------------------------------------------


def test_env_variable_selects_another_config(tmp_path, monkeypatch):
    other = write_config(tmp_path / "other.yaml", dataset={"name": "other"})
    monkeypatch.setenv("CHURNOPS_CONFIG", str(other))
    assert resolve_config_path() == other.resolve()
    assert load_config().dataset.name == "other"


def test_explicit_path_beats_env_variable(tmp_path, monkeypatch):
    from_env = write_config(tmp_path / "env.yaml", dataset={"name": "from_env"})
    explicit = write_config(tmp_path / "explicit.yaml", dataset={"name": "explicit"})
    monkeypatch.setenv("CHURNOPS_CONFIG", str(from_env))
    assert resolve_config_path(explicit) == explicit.resolve()
    assert resolve_config_path(str(explicit)) == explicit.resolve()
    assert load_config(explicit).dataset.name == "explicit"


def test_relative_source_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    raw = raw_config()
    raw["dataset"]["sources"] = [
        {"name": "a", "path": "../data/a.csv", "columns": ["age"]},
        {"name": "b", "path": "b.parquet", "columns": ["plan", "y"]},
        {"name": "c", "path": str(tmp_path / "elsewhere" / "c.csv")},
    ]
    path = dump(tmp_path / "configs" / "toy.yaml", raw)
    monkeypatch.chdir("/")  # the working directory must not matter
    sources = load_config(path).dataset.sources
    assert [s.path for s in sources] == [
        (tmp_path / "data" / "a.csv").resolve(),
        (tmp_path / "configs" / "b.parquet").resolve(),
        (tmp_path / "elsewhere" / "c.csv").resolve(),
    ]
    assert [s.file_format for s in sources] == ["csv", "parquet", "csv"]


# --- defaults ----------------------------------------------------------------------------------------------------


def test_only_dataset_given_fills_every_default(tmp_path):
    config = load_config(dump(tmp_path / "c.yaml", raw_config()))
    assert config.training.families == list(MODEL_FAMILIES)
    assert set(MODEL_FAMILIES) == {"logistic_regression", "random_forest", "xgboost", "lightgbm"}
    assert config.training.cv_folds == 5
    assert config.training.seed == 42
    assert config.training.test_fraction == 0.2
    assert config.training.params == {}
    assert config.registry.model_name == "churn-predictor"
    assert config.registry.champion_alias == "champion"
    assert config.policy.min_gain == 0.01
    assert config.validation.min_rows == 1
    assert config.validation.max_null_fraction == 0.05
    assert config.features.derived == []
    assert config.dataset.negative_label is None
    assert config.dataset.feature_columns == ["age", "plan"]
    assert config.experiment_name == "churnops-toy"


@pytest.mark.parametrize(
    ("positive", "negative", "expected"),
    [
        (1, 0, ("1", "0")),
        ("1", None, ("1", None)),
        ("Yes", "No", ("Yes", "No")),
    ],
)
def test_labels_become_strings(tmp_path, positive, negative, expected):
    raw = raw_config()
    raw["dataset"].update(positive_label=positive, negative_label=negative)
    config = load_config(dump(tmp_path / "c.yaml", raw))
    assert (config.dataset.positive_label, config.dataset.negative_label) == expected


# --- schema errors -----------------------------------------------------------------------------------------------


def _set(raw: dict, dotted: str, value: object) -> dict:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("dotted", "key"),
    [
        ("trainig", "trainig"),
        ("training.cv_fold", "cv_fold"),
        ("dataset.idcolumn", "idcolumn"),
        ("dataset.sources.0.colums", "colums"),
        ("validation.max_nul_fraction", "max_nul_fraction"),
        ("policy.min_gian", "min_gian"),
        ("registry.modelname", "modelname"),
    ],
)
def test_unknown_key_anywhere_is_an_error_naming_it(tmp_path, dotted, key):
    path = dump(tmp_path / "c.yaml", _set(raw_config(), dotted, 1))
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_unknown_key_inside_a_derived_feature_or_range(tmp_path):
    raw = raw_config(
        features={"derived": [{"kind": "bins", "name": "age_band", "column": "age", "edges": [0, 1], "edge": [2]}]}
    )
    with pytest.raises(ConfigError, match="edge"):
        load_config(dump(tmp_path / "a.yaml", raw))
    raw = raw_config(validation={"ranges": {"age": {"min": 0, "maximum": 3}}})
    with pytest.raises(ConfigError, match="maximum"):
        load_config(dump(tmp_path / "b.yaml", raw))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"training": {"cv_folds": 1}}, "cv_folds"),
        ({"training": {"cv_folds": 21}}, "cv_folds"),
        ({"training": {"test_fraction": 1.5}}, "test_fraction"),
        ({"training": {"test_fraction": 0}}, "test_fraction"),
        ({"training": {"families": ["svm"]}}, "families"),
        ({"training": {"families": []}}, "families"),
        ({"training": {"families": ["xgboost", "xgboost"]}}, "families"),
        ({"training": {"params": {"svm": {"C": 1}}}}, "params"),
        ({"validation": {"max_null_fraction": 1.2}}, "max_null_fraction"),
        ({"validation": {"min_rows": 0}}, "min_rows"),
        ({"validation": {"ranges": {"income": {"min": 0}}}}, "income"),
        ({"validation": {"null_fraction": {"income": 0.1}}}, "income"),
        (
            {"features": {"derived": [{"kind": "ratio", "name": "r", "numerator": "age", "denominator": "income"}]}},
            "income",
        ),
        (
            {
                "features": {
                    "derived": [{"kind": "count_equal", "name": "n", "columns": ["plan", "extra"], "value": "x"}]
                }
            },
            "extra",
        ),
        ({"features": {"derived": [{"kind": "bins", "name": "b", "column": "age", "edges": [10, 5]}]}}, "increasing"),
        ({"features": {"derived": [{"kind": "bins", "name": "plan", "column": "age", "edges": [0, 5]}]}}, "shadows"),
        ({"features": {"derived": [{"kind": "log", "name": "l", "column": "age"}]}}, "log"),
        ({"policy": {"min_gain": -0.1}}, "min_gain"),
        ({"monitoring": {"p_value": 1}}, "p_value"),
    ],
)
def test_bad_values_are_config_errors(tmp_path, changes, match):
    path = dump(tmp_path / "c.yaml", raw_config(**changes))
    with pytest.raises(ConfigError, match=match) as caught:
        load_config(path)
    assert isinstance(caught.value, ChurnopsInputError)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("dataset_changes", "match"),
    [
        ({"numeric_features": [], "categorical_features": []}, "at least one"),
        ({"categorical_features": ["plan", "age"]}, "twice"),
        ({"categorical_features": ["plan", "id"]}, "'id'"),
        ({"numeric_features": ["age", "y"]}, "'y'"),
        ({"sources": []}, "sources"),
        ({"sources": [{"name": "a", "path": "a.csv"}, {"name": "a", "path": "b.csv"}]}, "unique"),
        ({"sources": [{"name": "a b", "path": "a.csv"}]}, "name"),
        ({"sources": [{"name": "a", "path": "a.csv", "format": "xlsx"}]}, "format"),
        ({"positive_label": None}, "positive_label"),
    ],
)
def test_bad_dataset_sections_are_config_errors(tmp_path, dataset_changes, match):
    raw = raw_config()
    raw["dataset"].update(dataset_changes)
    with pytest.raises(ConfigError, match=match):
        load_config(dump(tmp_path / "c.yaml", raw))


@pytest.mark.parametrize("missing", ["name", "id_column", "target", "positive_label", "sources"])
def test_missing_required_dataset_key(tmp_path, missing):
    raw = raw_config()
    del raw["dataset"][missing]
    with pytest.raises(ConfigError, match=missing):
        load_config(dump(tmp_path / "c.yaml", raw))


def test_missing_dataset_section(tmp_path):
    raw = raw_config(training={"cv_folds": 3})
    del raw["dataset"]
    with pytest.raises(ConfigError, match="dataset"):
        load_config(dump(tmp_path / "c.yaml", raw))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a folder


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("dataset: [unclosed\n", id="broken-flow"),
        pytest.param("dataset:\n  name: a\n    bad: indent\n", id="bad-indent"),
        pytest.param("just some words\n", id="scalar"),
        pytest.param("- a\n- b\n", id="list"),
        pytest.param("", id="empty"),
        pytest.param("a,b,c\n1,2,3\n", id="csv"),
    ],
)
def test_non_yaml_or_non_mapping_file_is_a_config_error(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_binary_file_is_a_config_error(tmp_path):
    path = tmp_path / "model.parquet"
    path.write_bytes(b"PAR1\x89\xff\xfe\x00\x01binary")
    with pytest.raises(ConfigError):
        load_config(path)


@pytest.mark.parametrize("dataset", ["telco", ["a", "b"]])
def test_non_mapping_dataset_is_a_config_error(tmp_path, dataset):
    with pytest.raises(ConfigError, match="dataset"):
        load_config(dump(tmp_path / "c.yaml", {"dataset": dataset}))


# --- with_training -----------------------------------------------------------------------------------------------


def test_with_training_changes_only_the_given_keys():
    config = load_config()
    changed = config.with_training(cv_folds=3, families=None)
    assert changed.training.cv_folds == 3
    assert changed.training.families == config.training.families
    assert changed.model_dump(exclude={"training"}) == config.model_dump(exclude={"training"})
    assert changed.training.model_dump(exclude={"cv_folds"}) == config.training.model_dump(exclude={"cv_folds"})
    assert config.training.cv_folds == 5  # the original is untouched
    assert changed.with_training(families=["xgboost"]).training.families == ["xgboost"]


@pytest.mark.parametrize("changes", [{"cv_folds": 1}, {"families": ["svm"]}, {"test_fraction": 2.0}])
def test_with_training_revalidates(changes):
    with pytest.raises(ValueError):
        load_config().with_training(**changes)


def test_with_training_bad_value_is_a_config_error():
    with pytest.raises(ConfigError):
        load_config().with_training(cv_folds=1)


def test_config_is_immutable():
    config = load_config()
    with pytest.raises(ValueError):
        config.training.cv_folds = 3  # type: ignore[misc]
    assert isinstance(config, ChurnopsConfig)


# --- churnops_home -----------------------------------------------------------------------------------------------


def test_churnops_home_defaults_to_dot_churnops(tmp_path, monkeypatch):
    monkeypatch.delenv("CHURNOPS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert churnops_home() == (tmp_path / ".churnops").resolve()
    monkeypatch.setenv("CHURNOPS_HOME", "")
    assert churnops_home() == (tmp_path / ".churnops").resolve()


def test_churnops_home_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "work"))
    assert churnops_home() == (tmp_path / "work").resolve()
    monkeypatch.setenv("CHURNOPS_HOME", "~/custom")
    assert churnops_home() == (tmp_path / "home" / "custom").resolve()
