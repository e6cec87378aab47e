"""Typed configuration: defaults, YAML loading (plain and ROS parameter files), validation."""

from __future__ import annotations

import pytest

from dcreg_ros import ConfigError, RegistrationConfig
from dcreg_ros.core.config_io import dump_yaml, flatten, from_dict


def test_defaults_validate_and_round_trip_through_yaml(tmp_path):
    cfg = RegistrationConfig()
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_yaml(cfg))
    assert RegistrationConfig.from_yaml(path) == cfg
    assert RegistrationConfig.reference().correspondence.method == "knn_plane"


def test_partial_nested_and_ros_parameter_files(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("registration:\n  degeneracy:\n    strategy: tsvd\n")
    assert RegistrationConfig.from_yaml(path).degeneracy.strategy == "tsvd"
    path.write_text("dcreg_node:\n  ros__parameters:\n    degeneracy:\n      threshold: 20.0\n    topic: points\n")
    assert RegistrationConfig.from_yaml(path).degeneracy.threshold == 20.0


@pytest.mark.parametrize("data,needle", [
    ({"degeneracy": {"strategy": "magic"}}, "one of"),
    ({"degeneracy": {"threshold": 0.5}}, "degeneracy.threshold"),
    ({"correspondence": {"max_distance": 0}}, "max_distance"),
    ({"correspondence": {"knn": 2.5}}, "integer"),
    ({"preprocess": {"min_range": 5, "max_range": 2}}, "must exceed"),
    ({"robust": {"kernal": "huber"}}, "unknown parameter 'robust.kernal'"),
    ({"robust": "huber"}, "expected a section"),
    ({"convergence": {"max_iterations": True}}, "integer"),
])
def test_invalid_values_name_the_parameter(data, needle):
    with pytest.raises(ConfigError, match=needle):
        from_dict(RegistrationConfig, data)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        RegistrationConfig.from_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RegistrationConfig.from_yaml(bad)


def test_every_parameter_has_a_description():
    for name, (_, doc) in flatten(RegistrationConfig()).items():
        assert doc, name
