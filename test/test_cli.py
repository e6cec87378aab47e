"""The `dcreg` command line, run as a real subprocess, including its bad-input behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, box_room, minimal_example, require_data, run_cli
from dcreg_ros.io.cloud_files import write_pcd

@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    d = tmp_path_factory.mktemp("clouds")
    target = box_room(seed=0)
    source = box_room(seed=1) - np.array([0.2, 0.1, 0.0])
    write_pcd(d / "source.pcd", source)
    write_pcd(d / "target.pcd", target)
    return d


def test_register_json_has_the_documented_keys(clouds):
    out = json.loads(run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--json").stdout)
    for key in ("T_target_source", "iterations", "rmse", "fitness", "num_correspondences", "covariance",
                "degeneracy_first", "degeneracy_last"):
        assert key in out
    T = np.array(out["T_target_source"])
    np.testing.assert_allclose(T[:3, 3], [0.2, 0.1, 0.0], atol=0.02)
    assert np.array(out["covariance"]).shape == (6, 6)
    for rep in (out["degeneracy_first"], out["degeneracy_last"]):
        for key in ("mask", "degenerate_axes", "kappa_rotation", "kappa_translation", "kappa_full",
                    "eigenvalues_rotation", "eigenvalues_translation", "contributions"):
            assert key in rep
        assert len(rep["mask"]) == 6 and rep["degenerate_axes"] == []


def test_register_init_strategy_and_text_report(clouds):
    proc = run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--init", "0.1 0 0 0 0 1", "--strategy", "dcreg_prior")
    assert "status        converged" in proc.stdout and "strategy dcreg_prior" in proc.stdout
    assert "degeneracy (first iteration)" in proc.stdout and "kappa_t" in proc.stdout


def test_register_with_config_file(clouds, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("registration:\n  convergence:\n    max_iterations: 2\n")
    out = json.loads(run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--config", cfg, "--json").stdout)
    assert out["iterations"] <= 2
    cfg.write_text("registration:\n  convergence:\n    max_iterationz: 2\n")
    assert_one_line_error(run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--config", cfg, ok=False), "unknown parameter")
    cfg.write_text("registration:\n  correspondence:\n    max_distance: -1\n")
    assert_one_line_error(run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--config", cfg, ok=False), "max_distance")


def test_register_bad_inputs(clouds, tmp_path):
    tgt = clouds / "target.pcd"
    assert_one_line_error(run_cli("register", tmp_path / "missing.pcd", tgt, ok=False), "no such file")
    (tmp_path / "garbage.pcd").write_bytes(b"\x00\x01garbage")
    assert_one_line_error(run_cli("register", tmp_path / "garbage.pcd", tgt, ok=False), "garbage.pcd")
    (tmp_path / "x.xyzw").write_text("1 2 3\n")
    assert_one_line_error(run_cli("register", tmp_path / "x.xyzw", tgt, ok=False), "unsupported extension")
    write_pcd(tmp_path / "tiny.pcd", np.random.default_rng(0).normal(size=(5, 3)))
    assert_one_line_error(run_cli("register", tmp_path / "tiny.pcd", tgt, ok=False), "need at least 10")
    nan = np.random.default_rng(0).normal(size=(50, 3))
    nan[5:] = np.nan
    write_pcd(tmp_path / "nan.pcd", nan)
    assert_one_line_error(run_cli("register", tmp_path / "nan.pcd", tgt, ok=False), "NaN/Inf")
    assert_one_line_error(run_cli("register", clouds / "source.pcd", tgt, "--init", "1 2 3", ok=False), "--init")
    assert_one_line_error(run_cli("register", clouds / "source.pcd", tgt, "--init", "1 2 3 a b c", ok=False), "--init")


def test_register_real_pair_reports_degeneracy_in_words():
    base = require_data() / "degenerate/ouster_os0_8"
    proc = run_cli("register", base / "os0-8_s0_f01_id58685.pcd", base / "os0-8_s0_f00_id58684.pcd")
    assert "x translation" in proc.stdout


def test_analyze_hessian_matches_minimal_example(tmp_path):
    H, g = minimal_example()
    np.savetxt(tmp_path / "H.txt", H)
    np.savetxt(tmp_path / "g.txt", g)
    out = json.loads(run_cli("analyze-hessian", tmp_path / "H.txt", "--gradient", tmp_path / "g.txt", "--json").stdout)
    assert out["mask"] == [False, False, True, False, False, True]
    assert out["degenerate_axes"] == ["yaw", "z"]
    assert out["kappa_translation"] == pytest.approx(742.066396, abs=1e-5)
    np.testing.assert_allclose(out["step"], [0.190398, -0.306306, -2.620922, 0.095321, -0.515479, 41.997563], atol=1e-5)
    assert abs(out["pcg_iterations"] - 6) <= 1
    text = run_cli("analyze-hessian", tmp_path / "H.txt").stdout
    assert "yaw" in text and "DEGENERATE" in text and "roll pitch yaw x y z" in text
    assert json.loads(run_cli("analyze-hessian", tmp_path / "H.txt", "--json").stdout)["step"] is None


def test_analyze_hessian_bad_inputs(tmp_path):
    H, _ = minimal_example()
    bad = H.copy()
    bad[0, 1] += 1.0
    np.savetxt(tmp_path / "asym.txt", bad)
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "asym.txt", ok=False), "not symmetric")
    nan = H.copy()
    nan[2, 2] = np.nan
    np.savetxt(tmp_path / "nan.txt", nan)
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "nan.txt", ok=False), "NaN or Inf")
    np.savetxt(tmp_path / "short.txt", H[:5])
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "short.txt", ok=False), "needs 36 numbers")
    (tmp_path / "words.txt").write_text("a b c")
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "words.txt", ok=False), "only numbers")
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "none.txt", ok=False), "no such file")
    np.savetxt(tmp_path / "H.txt", H)
    np.savetxt(tmp_path / "g5.txt", np.ones(5))
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "H.txt", "--gradient", tmp_path / "g5.txt", ok=False), "needs 6 numbers")


def test_analyze_hessian_out_of_float64_range_is_one_line(tmp_path):
    np.savetxt(tmp_path / "huge.txt", 1e308 * np.eye(6))
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "huge.txt", ok=False), "divide H by a constant")
    np.savetxt(tmp_path / "tiny.txt", 1e-308 * np.eye(6))
    assert_one_line_error(run_cli("analyze-hessian", tmp_path / "tiny.txt", ok=False), "scale H by a constant")
    # the same matrix scaled into range is analysed: the ratios do not depend on the scale
    np.savetxt(tmp_path / "ok.txt", 1e100 * np.eye(6))
    assert "well constrained" in run_cli("analyze-hessian", tmp_path / "ok.txt").stdout


def test_yaml_syntax_error_in_a_config_is_one_line(clouds, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("registration:\n  degeneracy: [1, 2\n")
    proc = run_cli("register", clouds / "source.pcd", clouds / "target.pcd", "--config", cfg, ok=False)
    assert_one_line_error(proc, "is not valid YAML: line 3, column 1: expected ',' or ']'")
