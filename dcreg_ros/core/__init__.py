"""Pure numpy/numba core: geometry, voxel map, planes, Hessian, degeneracy analysis, solvers,
the registration loop and the odometry pipeline. Nothing here imports ROS."""
