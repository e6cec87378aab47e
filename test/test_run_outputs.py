"""The pieces behind `dcreg run`: streamed outputs, skip bookkeeping, progress, aligned plots."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from dcreg_ros.core.degeneracy import analyze_hessian
from dcreg_ros.core.geometry import pose_from_xyz_rpy
from dcreg_ros.core.odometry import FrameRecord
from dcreg_ros.eval.metrics import ALIGN_SE3, detection_scores, nearest_stamps, trajectory_errors
from dcreg_ros.eval.plots import plot_errors, plot_trajectory
from dcreg_ros.eval.progress import Progress
from dcreg_ros.eval.run_outputs import OutputError, RunWriter, prepare_output_dir, read_flags
from dcreg_ros.eval.runner import RunResult, run_odometry
from dcreg_ros.io.scan import Scan
from dcreg_ros.io.skips import SkipLog
from dcreg_ros.io.trajectory import Trajectory, read_tum


# frame 2 saw a corridor: the x translation is weak (lambda_x = 2 against 500-900), the only flag
WEAK_X = analyze_hessian(np.diag([500.0, 600.0, 700.0, 2.0, 800.0, 900.0]))


def _record(i: int, x: float) -> FrameRecord:
    return FrameRecord(index=i, stamp=10.0 + 0.1 * i, pose=pose_from_xyz_rpy(x, 0.0, 0.0, 0.0, 0.0, 0.0), status="converged",
                       notes=["deskewing off: test"] if i == 1 else [], degeneracy=WEAK_X if i == 2 else None)


def test_writer_streams_every_frame_before_it_finishes(tmp_path):
    with RunWriter(tmp_path / "run", {"input": "x"}) as writer:
        early = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert early == {"input": "x", "completed": False, "stopped_reason": "still running, or killed before it could finish"}
        for i in range(3):
            writer.write_frame(_record(i, 0.5 * i))
            # readable by another process right away: the lines are flushed per frame
            assert len(read_tum(tmp_path / "run" / "trajectory_tum.txt")) == i + 1
            assert len((tmp_path / "run" / "trajectory_kitti.txt").read_text().splitlines()) == i + 1
        rows = (tmp_path / "run" / "diagnostics.csv").read_text().splitlines()
        assert len(rows) == 4 and rows[2].endswith("deskewing off: test")
        written = writer.finish({"frames": 3, "completed": True})
    assert written == json.loads((tmp_path / "run" / "summary.json").read_text()) == {"input": "x", "frames": 3, "completed": True}
    np.testing.assert_allclose(read_tum(tmp_path / "run" / "trajectory_tum.txt").positions[:, 0], [0.0, 0.5, 1.0])
    stamps, masks = read_flags(tmp_path / "run")
    np.testing.assert_allclose(stamps, [10.0, 10.1, 10.2])
    assert WEAK_X.mask == (False, False, False, True, False, False)
    np.testing.assert_array_equal(masks, [[False] * 6, [False] * 6, WEAK_X.mask])  # one row per frame, its flags


def test_writer_records_an_unexpected_exit_as_the_stop_reason(tmp_path):
    with pytest.raises(RuntimeError):
        with RunWriter(tmp_path / "run") as writer:
            writer.write_frame(_record(0, 0.0))
            raise RuntimeError("disk on fire")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["completed"] is False and summary["stopped_reason"] == "RuntimeError: disk on fire" and summary["frames"] == 1
    assert len(read_tum(tmp_path / "run" / "trajectory_tum.txt")) == 1


def test_output_folder_problems_are_found_up_front(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="it is a file"):
        prepare_output_dir(tmp_path / "file")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output_dir(tmp_path / "file" / "sub")
    assert prepare_output_dir(tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())


def test_skips_are_grouped_by_reason_with_numbers_ignored():
    log = SkipLog()
    for i in range(10):
        log.skip("unreadable file", f"{i}.bin", f"KITTI .bin size {1600 + i} is not a multiple of 16 bytes")
    log.skip("unusable frame", "frame 3", "fewer than 10 valid points (4)")
    assert log.skipped == 11 and log.by_kind() == {"unreadable file": 10, "unusable frame": 1}
    assert log.describe() == ("10 unreadable files (KITTI .bin size 1600 is not a multiple of 16 bytes; first: 0.bin), "
                              "1 unusable frame (fewer than 10 valid points (4); first: frame 3)")
    merged = SkipLog.merged(log, None, log)
    assert merged.skipped == 22 and len(merged.groups) == 2 and len(merged.examples) == 10
    assert log.skipped == 11  # merging copies, it does not add into the inputs


def test_run_odometry_counts_frames_it_cannot_use_and_stops_on_a_broken_source(tmp_path):
    rng = np.random.default_rng(0)
    good = [Scan(0.1 * k, rng.uniform(-10, 10, (500, 3))) for k in range(4)]

    class Source:  # a dataset whose storage breaks after three scans
        skips = SkipLog()

        def __iter__(self):
            yield good[0]
            yield Scan(-0.5, good[1].points)  # goes back in time: skipped
            yield Scan(0.2, np.zeros((3, 3)))  # too few points: skipped
            yield good[3]
            from dcreg_ros.io.bags import BagError

            raise BagError("bag: cannot read messages after /points message 3 (boom)")

    seen = []
    result = run_odometry(Source(), on_frame=seen.append)
    assert [r.stamp for r in result.records] == [0.0, pytest.approx(0.3)] == [r.stamp for r in seen]
    assert result.stop.completed is False and "boom" in result.stop.reason
    assert result.skips.by_kind() == {"unusable frame": 2} and "frame 1" in result.skips.examples[0]
    capped = run_odometry(good, max_frames=2)
    assert len(capped.records) == 2 and capped.stop.completed and capped.stop.reason == "max_frames (2) reached"
    assert run_odometry(good).stop.reason == "end of input"


def test_progress_on_a_terminal_and_in_a_log():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    records = [_record(i, 0.1 * i) for i in range(30)]
    tty, log = Tty(), io.StringIO()
    for stream in (tty, log):
        progress = Progress(30, "run: ", stream=stream)
        for r in records:
            progress.update(r)
        progress.close()
    assert "\r" in tty.getvalue() and "frame 30/30" in tty.getvalue() and "Hz" in tty.getvalue()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 10 <= len(lines) <= 12  # about one line per 10%
    assert lines[-1].startswith("run: frame 30/30") and "Hz, degenerate: none" in lines[-1]
    quiet = io.StringIO()
    Progress(30, stream=quiet, enabled=False).update(records[0])
    assert quiet.getvalue() == ""


def _rotated_run(yaw_deg: float) -> tuple[RunResult, Trajectory]:
    """A curved ground-truth path and the same path seen from an odom frame turned by ``yaw_deg``."""
    t = np.arange(30) * 0.1
    gt_poses = np.stack([pose_from_xyz_rpy(2 * s, np.sin(s), 0.0, 0.0, 0.0, np.arctan(np.cos(s) / 2)) for s in t])
    offset = pose_from_xyz_rpy(1.0, -2.0, 0.0, 0.0, 0.0, np.radians(yaw_deg))
    est = offset @ gt_poses
    est[10:, 0, 3] += 0.05  # an error the alignment must not hide
    records = [FrameRecord(i, s, P, "converged") for i, (s, P) in enumerate(zip(t, est))]
    return RunResult("dcreg_prior", records), Trajectory(t, gt_poses)


def test_trajectory_plot_draws_the_estimate_in_the_ground_truth_frame(tmp_path):
    result, gt = _rotated_run(10.0)
    errors = plot_trajectory(result, tmp_path / "trajectory.png", gt)
    assert (tmp_path / "trajectory.png").stat().st_size > 0
    assert errors.alignment == ALIGN_SE3 and errors.describe_alignment() == "SE(3) Umeyama alignment, no scale"
    drawn = (errors.T_reference_estimate @ result.trajectory.poses)[:, :3, 3]
    assert np.abs(drawn - gt.positions).max() < 0.06  # on top of the truth up to the injected 5 cm
    assert np.abs(result.trajectory.positions - gt.positions).max() > 1.0  # the raw odom frame is not
    assert plot_trajectory(result, tmp_path / "alone.png") is None


def test_errors_per_body_axis_show_along_which_axis_the_estimate_is_off(tmp_path):
    # ground truth heading +90 deg (body x = world y); the estimate is 0.3 m ahead along body x
    t = np.arange(10) * 0.1
    gt = np.stack([pose_from_xyz_rpy(-np.sin(s), 3 * s, 0.0, 0.0, 0.0, np.pi / 2) for s in t])
    est = gt.copy()
    est[:, 1, 3] += np.linspace(0.0, 0.3, 10)
    errors = trajectory_errors(Trajectory(t, est), Trajectory(t, gt))
    body = errors.body_errors()
    assert np.abs(body[:, 0]).max() > 3 * np.abs(body[:, 1:]).max()  # along the body x axis, not across
    masks = np.zeros((10, 6), bool)
    masks[5:, 3] = True
    plot_errors(errors, tmp_path / "eval.png", flags=(t, masks))
    assert (tmp_path / "eval.png").stat().st_size > 0


def test_nearest_stamp_association_and_detection_scores():
    j, ok = nearest_stamps(np.array([0.0, 0.1, 0.2]), np.array([-0.5, 0.04, 0.06, 0.2, 0.215]), 0.02)
    assert list(j) == [0, 0, 1, 2, 2] and list(ok) == [False, False, False, True, True]
    truth = np.zeros((3, 6), bool)
    truth[:, 3] = True
    est = truth.copy()
    est[0, 4] = True
    s = detection_scores([0.0, 0.1, 0.2, 9.0], np.vstack([est, est[:1]]), [0.2, 0.0, 0.1], truth)
    assert (s.true_positive, s.false_positive, s.false_negative, s.frames, s.false_alarm_frames) == (3, 1, 0, 3, 0)
