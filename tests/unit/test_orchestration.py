"""churnops.orchestration: config paths from Params and run conf are confined."""

from __future__ import annotations

import pytest

from churnops.errors import ChurnopsInputError
from churnops.orchestration import CONFIG_PATH_PATTERN, confined_config_path
from tests.helpers import ROOT, TELCO_CONFIG


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.delenv("CHURNOPS_CONFIG", raising=False)
    monkeypatch.delenv("CHURNOPS_ALLOWED_PATHS", raising=False)
    return home


def test_empty_means_the_default(home):
    assert confined_config_path(None) is None and confined_config_path("") is None


def test_configs_in_the_project_or_churnops_home_are_allowed(home):
    assert confined_config_path(str(TELCO_CONFIG)) == str(TELCO_CONFIG.resolve())
    (home / "mine.yml").write_text("dataset: {}\n")
    assert confined_config_path(str(home / "mine.yml")) == str((home / "mine.yml").resolve())
    # relative parts are resolved before the check
    assert confined_config_path(str(home / "sub" / ".." / "mine.yml")) == str((home / "mine.yml").resolve())


@pytest.mark.parametrize("value", ["/etc/passwd", "../../etc/shadow", "/etc/churnops.yaml", "/tmp/../etc/x.yml"])
def test_paths_outside_or_not_yaml_are_bad_input(home, value):
    with pytest.raises(ChurnopsInputError, match="config_path"):
        confined_config_path(value)


def test_a_symlink_out_of_churnops_home_is_refused(home, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("dataset: {}\n")
    (home / "link.yaml").symlink_to(outside)
    with pytest.raises(ChurnopsInputError, match="outside the allowed folders"):
        confined_config_path(str(home / "link.yaml"))


def test_operators_can_allow_more_folders(home, tmp_path, monkeypatch):
    shared = tmp_path / "shared-configs"
    shared.mkdir()
    with pytest.raises(ChurnopsInputError):
        confined_config_path(str(shared / "a.yaml"))
    monkeypatch.setenv("CHURNOPS_ALLOWED_PATHS", str(shared))
    assert confined_config_path(str(shared / "a.yaml")) == str(shared / "a.yaml")
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "elsewhere" / "c.yaml"))  # its folder is allowed too
    assert confined_config_path(str(tmp_path / "elsewhere" / "d.yaml")).endswith("d.yaml")


def test_the_param_pattern_accepts_yaml_paths_only():
    import re

    assert re.match(CONFIG_PATH_PATTERN, str(ROOT / "include" / "config" / "telco.yaml"))
    assert re.match(CONFIG_PATH_PATTERN, "configs/x.yml")
    assert not re.match(CONFIG_PATH_PATTERN, "/etc/passwd")
    assert not re.match(CONFIG_PATH_PATTERN, ".yaml")
    assert re.match(CONFIG_PATH_PATTERN, ""), "empty: the default config"
