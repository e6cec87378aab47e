"""Input/output: point cloud files, rosbags, PointCloud2 <-> numpy, trajectories."""
