"""Tasks in the built-in simulator that a robot does better with memory (issue 13).

* :mod:`~memory_node.tasks.grid` -- occupancy grid and A* paths;
* :mod:`~memory_node.tasks.world` -- the robot's body in the simulator (drive, look, perceive);
* :mod:`~memory_node.tasks.suite` -- houses, tours, changes while away, tasks with truth;
* :mod:`~memory_node.tasks.services` -- the memory's public services as the agent uses them;
* :mod:`~memory_node.tasks.agent` -- the agent and its variants;
* :mod:`~memory_node.tasks.score`, :mod:`~memory_node.tasks.retrieval_eval` -- scoring.

``python -m memory_node.tasks --help`` runs the benchmark.
"""
