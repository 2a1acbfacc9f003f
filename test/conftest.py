"""Test-wide settings: an isolated ROS domain per run and offline model hubs."""

import os
import random

# Each pytest run gets its own DDS domain so parallel runs on one machine never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
