"""`dcreg run / compare / eval` on broken inputs: nothing computed is lost, every loss is counted,
every failure is one line. Damaged bags are real bags written here with rosbags and then broken
the way storage breaks (an MCAP chunk whose CRC no longer matches, sqlite pages overwritten, a
truncated message); Ctrl-C is a real SIGINT to a running `dcreg run`."""

from __future__ import annotations

import binascii
import csv
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from conftest import ROOT, assert_one_line_error, require_data, run_cli

NOTE = "dcreg run: note: "  # remarks about the input (e.g. no ground truth) printed before the run
from dcreg_ros.io.cloud_files import read_cloud
from dcreg_ros.io.pointcloud2 import scan_to_pointcloud2_parts, seconds_to_sec_nanosec
from dcreg_ros.io.trajectory import Trajectory, write_tum
from dcreg_ros.sim import simulate, write_simulation

FRAMES = 20


@pytest.fixture(scope="module")
def sim():
    return simulate("corridor", frames=FRAMES, beams=16, seed=3)


@pytest.fixture(scope="module")
def bags(sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    return {storage: write_simulation(sim, root / storage, storage=storage) for storage in ("mcap", "sqlite3")}


def _mcap_records(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, opcode, length) of the top-level MCAP records after the magic."""
    pos, out = 8, []
    while pos + 9 <= len(data):
        op, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        out.append((pos, op, length))
        pos += 9 + length
        if op == 0x02:  # footer
            break
    return out


def corrupt_mcap_chunk(bag: Path, dst: Path) -> int:
    """Copy ``bag``, store real chunk CRCs (as rosbag2's MCAP writer does; rosbags writes 0) and
    flip one byte inside the middle chunk. Returns how many chunks there are."""
    shutil.copytree(bag, dst)
    storage = next(dst.glob("*.mcap"))
    data = bytearray(storage.read_bytes())
    chunks = [r for r in _mcap_records(data) if r[1] == 0x06]
    for pos, _, _ in chunks:
        body = pos + 9  # start, end (u64), uncompressed size (u64), crc (u32), compression, records
        compression_len = struct.unpack_from("<I", data, body + 28)[0]
        assert compression_len == 0  # uncompressed: the CRC covers the stored records
        records_len = struct.unpack_from("<Q", data, body + 32)[0]
        records = bytes(data[body + 40: body + 40 + records_len])
        struct.pack_into("<I", data, body + 24, binascii.crc32(records))
    pos, _, length = chunks[len(chunks) // 2]
    data[pos + 9 + length // 2] ^= 0xFF
    storage.write_bytes(bytes(data))
    return len(chunks)


def corrupt_sqlite_pages(bag: Path, dst: Path, at: float = 0.6) -> int:
    """Copy ``bag`` and overwrite the database page that holds the middle of the /points message
    at ``at`` of the bag (its blob's overflow chain breaks there). Returns that message's index."""
    import sqlite3

    shutil.copytree(bag, dst)
    storage = next(dst.glob("*.db3"))
    with sqlite3.connect(f"file:{storage}?mode=ro", uri=True) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        blobs = [row[0] for row in db.execute(
            "SELECT data FROM messages JOIN topics ON messages.topic_id = topics.id WHERE topics.name = '/points' "
            "ORDER BY timestamp")]
    index = int(len(blobs) * at)
    blob = blobs[index]
    data = bytearray(storage.read_bytes())
    where = data.find(blob[len(blob) // 2: len(blob) // 2 + 256])
    assert where > 0
    start = where // page * page
    data[start: start + page] = b"\xde\xad\xbe\xef" * (page // 4)
    storage.write_bytes(bytes(data))
    return index


def _outputs(out: Path) -> tuple[int, int, dict]:
    tum = len((out / "trajectory_tum.txt").read_text().splitlines())
    rows = len(list(csv.DictReader(open(out / "diagnostics.csv"))))
    return tum, rows, json.loads((out / "summary.json").read_text())


def test_mcap_chunk_with_a_bad_crc_keeps_the_frames_before_it(bags, tmp_path):
    chunks = corrupt_mcap_chunk(bags["mcap"], tmp_path / "bag")
    assert chunks >= 3  # the damage is in the middle, not at either end
    out = tmp_path / "out"
    proc = run_cli("run", tmp_path / "bag", "--out", out, "--quiet", "--no-plots", ok=False)
    # the ground truth lies in the damaged chunk too: a note says it is not available
    notes = [line for line in proc.stderr.splitlines() if line.startswith(NOTE)]
    assert len(notes) == 1 and "no ground truth" in notes[0] and "checksum" in notes[0]
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith(NOTE))
    assert_one_line_error(proc, "Chunk checksum mismatch")
    assert "stopped after" in proc.stderr and f"of {FRAMES} frames" in proc.stderr
    tum, rows, summary = _outputs(out)
    assert 0 < tum < FRAMES and rows == tum == summary["frames"]
    assert summary["completed"] is False and "checksum" in summary["stopped_reason"]
    assert summary["input_frames"] == FRAMES
    assert f"frames           {tum} registered" in proc.stdout  # the table of what was done is still printed


def test_sqlite_with_corrupt_pages_keeps_the_frames_before_them(bags, tmp_path):
    damaged = corrupt_sqlite_pages(bags["sqlite3"], tmp_path / "bag")
    out = tmp_path / "out"
    proc = run_cli("run", tmp_path / "bag", "--out", out, "--quiet", "--no-plots", ok=False)
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith(NOTE))
    assert_one_line_error(proc, "malformed")
    tum, rows, summary = _outputs(out)
    assert tum == damaged == rows == summary["frames"]  # every frame before the damaged message
    assert summary["completed"] is False and "cannot read messages after /points message" in summary["stopped_reason"]
    # the poses written are the ones of a clean run of the same frames
    clean = tmp_path / "clean"
    run_cli("run", bags["sqlite3"], "--out", clean, "--quiet", "--no-plots", "--max-frames", tum)
    np.testing.assert_allclose(np.loadtxt(out / "trajectory_tum.txt"), np.loadtxt(clean / "trajectory_tum.txt"), atol=1e-6)
    assert json.loads((clean / "summary.json").read_text())["stopped_reason"] == f"max_frames ({tum}) reached"


def test_a_truncated_message_is_skipped_and_counted(sim, tmp_path):
    ts = get_typestore(Stores.ROS2_JAZZY)
    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/points", "sensor_msgs/msg/PointCloud2", typestore=ts)
        for i, scan in enumerate(sim.scans[:6]):
            raw = ts.serialize_cdr(_cloud(ts, scan), "sensor_msgs/msg/PointCloud2")
            writer.write(conn, int(scan.stamp * 1e9), raw[: len(raw) // 2] if i == 3 else raw)
    out = tmp_path / "out"
    proc = run_cli("run", path, "--out", out, "--quiet", "--no-plots")
    assert "5 registered, 1 skipped: 1 unreadable message (" in proc.stdout and "/points message 3" in proc.stdout
    tum, _, summary = _outputs(out)
    assert tum == 5 and summary["completed"] is True and summary["skipped"] == 1
    assert summary["skipped_by_kind"] == {"unreadable message": 1}
    assert summary["skipped_by_reason"][0]["first"] == "/points message 3"


def _cloud(ts, scan):
    T = ts.types
    fields, point_step, data = scan_to_pointcloud2_parts(scan)
    sec, nanosec = seconds_to_sec_nanosec(scan.stamp)
    return T["sensor_msgs/msg/PointCloud2"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id="lidar"),
        height=1, width=len(scan),
        fields=[T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * len(scan), data=np.frombuffer(data, np.uint8),
        is_dense=True)


def _bin_folder(folder: Path, damage: set[int], cut: int | None = None) -> None:
    """The 10 real OS0-8 frames as KITTI .bin files; files in ``damage`` lose 3 bytes (or keep ``cut``)."""
    folder.mkdir()
    files = sorted((require_data() / "degenerate" / "ouster_os0_8").glob("*.pcd"))
    for i, f in enumerate(files):
        cloud = read_cloud(f)
        data = np.column_stack([cloud.points, np.zeros(len(cloud))]).astype("<f4").tobytes()
        if i in damage:
            data = data[:cut] if cut is not None else data[:-3]
        (folder / f"{i:06d}.bin").write_bytes(data)


def test_folder_with_a_truncated_file_reports_it(tmp_path):
    _bin_folder(tmp_path / "seq", {4})
    out = tmp_path / "out"
    proc = run_cli("run", tmp_path / "seq", "--out", out, "--quiet", "--no-plots")
    assert "9 registered, 1 skipped: 1 unreadable file (KITTI .bin size" in proc.stdout and "000004.bin" in proc.stdout
    _, _, summary = _outputs(out)
    assert summary["frames"] == 9 and summary["skipped"] == 1 and summary["skipped_by_kind"] == {"unreadable file": 1}


def test_folder_of_only_bad_files_says_why(tmp_path):
    _bin_folder(tmp_path / "seq", set(range(10)), cut=16 * 100 + 5)
    out = tmp_path / "out"
    proc = run_cli("run", tmp_path / "seq", "--out", out, "--quiet", ok=False)
    assert_one_line_error(proc, "0 registered, 10 skipped: 10 unreadable files (KITTI .bin size")
    assert "empty input" not in proc.stderr
    assert json.loads((out / "summary.json").read_text())["skipped"] == 10


def _long_folder(folder: Path, frames: int = 300) -> Path:
    """``frames`` scans: the 10 real OS0-8 frames, repeated (long enough to interrupt)."""
    folder.mkdir()
    files = sorted((require_data() / "degenerate" / "ouster_os0_8").glob("*.pcd"))
    for i in range(frames):
        (folder / f"{i:04d}.pcd").symlink_to(files[i % len(files)])
    return folder


def _interrupt(args: list, watch: Path, lines: int = 3) -> tuple[int, str, str]:
    """Start `dcreg ARGS`, send SIGINT once ``watch`` has ``lines`` lines, return (status, stdout, stderr)."""
    # a shell starts background jobs with SIGINT ignored and children inherit that: give the CLI
    # the default disposition, as a terminal would
    proc = subprocess.Popen([sys.executable, "-m", "dcreg_ros.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if watch.exists() and len(watch.read_text().splitlines()) >= lines:
            break
        time.sleep(0.02)
    finished_early = proc.poll() is not None
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert not finished_early, f"the run ended before the Ctrl-C was sent (make the input longer): {stderr}"
    assert "Traceback" not in stderr, stderr
    return proc.returncode, stdout, stderr


RUN_FRAMES = 2000  # at ~100 frames/s a shorter run can end before a loaded machine delivers the Ctrl-C


def test_ctrl_c_keeps_the_frames_so_far_and_says_so(tmp_path):
    folder = _long_folder(tmp_path / "loop", frames=RUN_FRAMES)
    out = tmp_path / "out"
    status, stdout, stderr = _interrupt(["run", folder, "--out", out, "--no-plots"], out / "trajectory_tum.txt")
    assert status == 130, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dcreg:")]
    assert len(lines) == 1 and lines[0].startswith("dcreg: interrupted: stopped after") and f"of {RUN_FRAMES} frames" in lines[0]
    tum, rows, summary = _outputs(out)
    assert 3 <= tum < RUN_FRAMES and rows == tum == summary["frames"]
    assert summary["completed"] is False and summary["stopped_reason"] == "interrupted (Ctrl-C)"
    assert f"{tum} registered" in stdout


COMPARE_FRAMES = 500  # the first method runs them all; the second is interrupted


def test_ctrl_c_during_compare_keeps_the_methods_so_far(tmp_path):
    folder = _long_folder(tmp_path / "loop", frames=COMPARE_FRAMES)
    out = tmp_path / "cmp"
    status, stdout, stderr = _interrupt(["compare", folder, "--strategies", "none,dcreg", "--out", out, "--quiet"],
                                        out / "dcreg_ros_dcreg" / "trajectory_tum.txt")
    assert status == 130 and "dcreg: interrupted after 2 method(s)" in stderr, stderr
    compare = json.loads((out / "compare.json").read_text())
    assert compare["interrupted"] is True and compare["completed"] is False
    first, second = compare["methods"]
    assert first["frames"] == COMPARE_FRAMES and first["completed"] is True
    assert 3 <= second["frames"] < COMPARE_FRAMES and second["stopped_reason"] == "interrupted (Ctrl-C)"
    assert _outputs(out / "dcreg_ros_dcreg")[0] == second["frames"]
    assert "(stopped: interrupted (Ctrl-C))" in stdout


def test_compare_on_a_broken_bag_keeps_every_method_so_far(bags, tmp_path):
    corrupt_mcap_chunk(bags["mcap"], tmp_path / "bag")
    out = tmp_path / "cmp"
    proc = run_cli("compare", tmp_path / "bag", "--strategies", "none,dcreg_prior", "--out", out, "--quiet", ok=False)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("dcreg:")]
    assert proc.returncode == 1 and len(lines) == 1 and "2 of 2 method(s) stopped early" in lines[0]
    assert proc.stdout.count("(stopped: ") == 2
    compare = json.loads((out / "compare.json").read_text())
    assert compare["completed"] is False and [m["method"] for m in compare["methods"]] == ["dcreg_ros/none", "dcreg_ros/dcreg_prior"]
    for m in compare["methods"]:
        tum, rows, summary = _outputs(out / m["method"].replace("/", "_"))
        assert 0 < tum < FRAMES and rows == tum == m["frames"] and summary["completed"] is False


def test_output_folders_are_checked_before_the_run(bags, tmp_path):
    (tmp_path / "a_file").write_text("x")
    for target, words in ((Path("/proc/x"), "cannot create the output folder"),
                          (tmp_path / "a_file" / "sub", "cannot create the output folder"),
                          (tmp_path / "a_file", "it is a file")):
        proc = run_cli("run", bags["mcap"], "--out", target, ok=False)
        assert_one_line_error(proc, words)
        assert proc.stdout == ""  # nothing was run
    run_dir = tmp_path / "run"
    run_cli("run", bags["mcap"], "--out", run_dir, "--quiet", "--no-plots", "--max-frames", 4)
    proc = run_cli("eval", run_dir, bags["mcap"], "--out", "/proc/x", ok=False)
    assert_one_line_error(proc, "/proc/x")


def test_run_with_two_frames_and_ground_truth_uses_first_pose_alignment(bags, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", bags["mcap"], "--out", out, "--max-frames", 2, "--quiet")
    assert "first-pose alignment" in proc.stdout and "3 matched positions" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and summary["completed"] is True and summary["alignment"].startswith("first-pose")
    assert summary["ms_per_frame_median"] is not None and np.isfinite(summary["ate_rmse_m"])
    for name in ("trajectory.png", "degeneracy.png", "errors.png"):
        assert (out / name).stat().st_size > 0
    # one frame: nothing to align, said in one line of the table, not a traceback
    proc = run_cli("run", bags["mcap"], "--out", tmp_path / "one", "--max-frames", 1, "--quiet")
    assert "accuracy         not computed: need at least two poses" in proc.stdout
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["ms_per_frame_median"] is None


def _tum(path: Path, stamps, xs, ys=None) -> Path:
    poses = np.tile(np.eye(4), (len(stamps), 1, 1))
    poses[:, 0, 3] = xs
    if ys is not None:
        poses[:, 1, 3] = ys
    write_tum(path, Trajectory(np.asarray(stamps, float), poses))
    return path


def test_eval_on_too_few_or_degenerate_trajectories(tmp_path):
    t = np.arange(10) * 0.1
    gt = _tum(tmp_path / "gt.txt", t, t, np.sin(t))
    later = _tum(tmp_path / "later.txt", t + 100.0, t, np.sin(t))
    assert_one_line_error(run_cli("eval", later, gt, "--out", tmp_path / "e0", ok=False), "no pose stamps in common")
    # two poses and a straight line: Umeyama is undetermined, the first pose aligns them (and it says so)
    for name, est, ref in (("two", _tum(tmp_path / "two.txt", t[:2], t[:2]), _tum(tmp_path / "two_gt.txt", t[:2], 1.1 * t[:2])),
                           ("line", _tum(tmp_path / "line.txt", t, t), _tum(tmp_path / "line_gt.txt", t, 1.1 * t))):
        proc = run_cli("eval", est, ref, "--out", tmp_path / name)
        assert "first-pose alignment" in proc.stdout and "3 matched positions not on one line" in proc.stdout, name
        res = json.loads((tmp_path / name / "eval.json").read_text())
        assert res["alignment"] == "first pose"
        # pinned at the first pose, the error grows with the 10% scale difference to the last pose
        last = 0.1 if name == "two" else t[-1]
        assert res["ate_max_m"] == pytest.approx(0.1 * last, abs=1e-6)
    proc = run_cli("eval", _tum(tmp_path / "one.txt", t[:1], t[:1]), gt, "--out", tmp_path / "e1", ok=False)
    assert_one_line_error(proc, "need at least two poses")
    proc = run_cli("eval", gt, gt, "--out", tmp_path / "e2", "--rpe-delta", 20, ok=False)
    assert_one_line_error(proc, "RPE delta")
