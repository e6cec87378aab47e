"""ROS 2 nodes: the odometry node (``dcreg_node``) and the bag player (``dcreg_bag_player``).

Only this package imports rclpy and the message packages; the conversions that do not need ROS
(covariance, parameter <-> config mapping) are plain functions so they can be tested alone.
"""
