"""ROS 2 nodes: the odometry node (``dcreg_node``) and the bag player (``dcreg_bag_player``).

Only this package imports rclpy and the message packages; what does not need ROS is plain Python
so it can be tested alone: the covariance and twist maths (core/covariance.py), the parameter <->
config mapping (parameters.py), the transport check (transport.py), the launch decisions
(launch_support.py).
"""
