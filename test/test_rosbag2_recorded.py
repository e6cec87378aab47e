"""Bags written by the real rosbag2 recorder (../shared/data/rosbag2_recorded: metadata versions 4
to 8, sqlite3 and MCAP, Jazzy service events), and a bag with a connection nobody can decode."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore

from conftest import assert_one_line_error, require_data, run_cli
from dcreg_ros.io.bag_reader import BagReader
from dcreg_ros.io.bags import list_topics, read_scans, unreadable_connections
from dcreg_ros.io.datasets import open_dataset
from dcreg_ros.io.pointcloud2 import scan_to_pointcloud2_parts, seconds_to_sec_nanosec
from dcreg_ros.io.scan import Scan

# bag -> (metadata version, a decodable topic, its message count, what its first message holds)
RECORDED = {
    "talker_sqlite3": (4, "/topic", 10, lambda m: m.data.startswith("Hello, world!")),
    "talker_mcap": (4, "/topic", 10, lambda m: m.data.startswith("Hello, world!")),
    "cdr_test_sqlite3": (7, "/test_topic", 3, lambda m: hasattr(m, "int64_value")),
    "topics_and_service_events_mcap": (8, "/test_topic1", 1, lambda m: hasattr(m, "string_value")),
}


def _recorded(name: str):
    path = require_data() / "rosbag2_recorded" / name
    assert path.is_dir(), path
    return path


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_bags_open_list_and_read(name):
    path = _recorded(name)
    version, topic, count, check = RECORDED[name]
    assert f"version: {version}" in (path / "metadata.yaml").read_text()
    topics = list_topics(path)
    assert topic in topics
    with BagReader(path) as reader:
        connections = reader.topics[topic].connections
        messages = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections)]
    assert len(messages) == count and check(messages[0])
    # every topic decodes every message, except where the bag's own definition is wrong
    with BagReader(path) as reader:
        for name_of_topic, info in reader.topics.items():
            expected_error = WRONG_DEFINITION.get((name, name_of_topic))
            raws = [(conn, raw) for conn, _, raw in reader.messages(info.connections)]
            assert len(raws) == info.msgcount, name_of_topic
            for conn, raw in raws:
                if expected_error is None:
                    reader.deserialize(raw, conn.msgtype)
                else:
                    with pytest.raises(SerdeError, match=f"^{re.escape(expected_error)}$"):
                        reader.deserialize(raw, conn.msgtype)


# rosbag2's schema-4 sqlite3 test bag stores placeholder definitions; the one of
# rcl_interfaces/msg/Log is 'uint8 level', which does not describe the 10 recorded /rosout
# messages (the same bytes decode with the full definition stored in talker_mcap)
WRONG_DEFINITION = {("talker_sqlite3", "/rosout"): "CDR message size mismatch for 'rcl_interfaces/msg/Log'."}


def test_the_wrong_stored_definition_is_the_only_reason_rosout_fails():
    with BagReader(_recorded("talker_sqlite3")) as sqlite, BagReader(_recorded("talker_mcap")) as mcap:
        (stored,) = sqlite.topics["/rosout"].connections
        assert stored.msgdef.data == "uint8 level"
        bad = [raw for _, _, raw in sqlite.messages([stored])]
        good = [raw for _, _, raw in mcap.messages(mcap.topics["/rosout"].connections)]
        assert [bytes(b) for b in bad] == [bytes(g) for g in good] and len(bad) == 10
        log = mcap.deserialize(good[0], "rcl_interfaces/msg/Log")
        assert log.name == "minimal_publisher" and log.msg == "Publishing: 'Hello, world! 0'"


def test_service_events_are_set_aside_and_reported():
    path = _recorded("topics_and_service_events_mcap")
    unreadable = unreadable_connections(path)
    assert {u.topic for u in unreadable} == {"/test_service1/_service_event", "/test_service2/_service_event"}
    assert all(u.msgtype == "test_msgs/srv/BasicTypes_Event" and "cannot be parsed" in u.reason for u in unreadable)
    assert "/test_service1/_service_event" not in list_topics(path)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_run_on_a_bag_without_pointcloud2_names_its_topics(name, tmp_path):
    proc = run_cli("run", _recorded(name), "--out", tmp_path / "out", ok=False)
    assert_one_line_error(proc, "no sensor_msgs/msg/PointCloud2 topic (topics: ")
    assert RECORDED[name][1] in proc.stderr and "Could not parse" not in proc.stderr
    if name == "topics_and_service_events_mcap":
        assert "/test_service1/_service_event (test_msgs/srv/BasicTypes_Event, definition unreadable)" in proc.stderr


def test_a_pointcloud_bag_with_an_undecodable_connection_still_runs(tmp_path):
    ts = get_typestore(Stores.ROS2_JAZZY)
    T = ts.types
    path = tmp_path / "bag"
    rng = np.random.default_rng(0)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        points = writer.add_connection("/points", "sensor_msgs/msg/PointCloud2", typestore=ts)
        # a schema rosbags cannot parse, like Jazzy's recorded service events
        broken = writer.add_connection("/srv/_service_event", "my_msgs/srv/Thing_Event",
                                       msgdef="MSG: my_msgs/srv/Thing_Event\n@@@ not a definition", rihs01="RIHS01_" + "0" * 64)
        for i in range(3):
            scan = Scan(100.0 + 0.1 * i, rng.uniform(-10, 10, (200, 3)), np.linspace(0, 0.1, 200))
            fields, step, data = scan_to_pointcloud2_parts(scan)
            sec, nanosec = seconds_to_sec_nanosec(scan.stamp)
            msg = T["sensor_msgs/msg/PointCloud2"](
                header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id="l"),
                height=1, width=200, fields=[T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
                is_bigendian=False, point_step=step, row_step=step * 200, data=np.frombuffer(data, np.uint8), is_dense=True)
            writer.write(points, int(scan.stamp * 1e9), ts.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2"))
            writer.write(broken, int(scan.stamp * 1e9), b"\x00\x01\x00\x00junk")
    assert len(list(read_scans(path))) == 3
    dataset = open_dataset(path)
    assert len(dataset) == 3 and "/srv/_service_event (my_msgs/srv/Thing_Event)" in dataset.notes[0]
    out = tmp_path / "out"
    proc = run_cli("run", path, "--out", out, "--quiet", "--no-plots")
    assert "3 registered, 0 skipped" in proc.stdout and "dcreg run: note: 1 connection(s) left out" in proc.stderr
    assert "/srv/_service_event" in json.loads((out / "summary.json").read_text())["notes"][0]
    proc = run_cli("run", path, "--topic", "/srv/_service_event", "--out", tmp_path / "o2", ok=False)
    assert_one_line_error(proc, "topic '/srv/_service_event' cannot be decoded: message definition cannot be parsed")


def test_folder_with_storage_but_no_metadata_gives_the_hint(tmp_path):
    folder = tmp_path / "copied"
    folder.mkdir()
    (folder / "talker.mcap").write_bytes((_recorded("talker_mcap") / "talker.mcap").read_bytes())
    proc = run_cli("run", folder, "--out", tmp_path / "out", ok=False)
    assert_one_line_error(proc, f"no metadata.yaml of a ROS 2 bag; to read its storage file directly pass {folder / 'talker.mcap'}")
    # and the hint works: the storage file alone opens
    assert "/topic" in list_topics(folder / "talker.mcap")
