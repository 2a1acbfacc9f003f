"""A memory-dependent task that shows what the policy memory bank buys a learned policy.

``env``: a pybullet cue-then-delay task (the cue shows which pad to reach, then disappears);
``policy``: a tiny CNN -> perceptual/cognitive tokens -> :mod:`memory_node.core.policy_bank` ->
action head; ``train`` and ``evaluate``: the command-line scripts.
"""
