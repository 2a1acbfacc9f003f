"""Built-in household simulator of memory_node (pybullet, CPU rendering), scenes and episodes.

Modules:

* :mod:`memory_sim.scene` -- SceneSpec / ObjectSpec / PartSpec, the scene description every
  source emits (procedural generator, Gazebo importer), and its pybullet loader.
* :mod:`memory_sim.procedural` -- seeded furnished houses (``generate_house``).
* :mod:`memory_sim.simulator` -- ``Simulator``: steps a posed RGB-D camera, returns
  ``memory_node.core.types.Frame`` plus ground truth; moves/adds/removes objects, sets states.
* :mod:`memory_sim.camera`, :mod:`memory_sim.sensor_noise` -- camera model and imperfections.
* :mod:`memory_sim.episode`, :mod:`memory_sim.trajectory` -- YAML episodes (camera path and
  timed changes) and their runner; ``python -m memory_sim.episode FILE`` runs one headless.
* :mod:`memory_sim.ground_truth` -- truth records and the JSON export.
* :mod:`memory_sim.ros_publisher` -- the ``sim_publisher`` ROS 2 node.
* :mod:`memory_sim.gazebo`, :mod:`memory_sim.bridges` -- Gazebo worlds, Habitat / AI2-THOR.

Nothing is imported here, so importing a submodule stays cheap.
"""
