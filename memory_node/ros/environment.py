"""Where the package's share files are, and the process environment its tools need.

No rclpy import here: :func:`use_large_data_profile` must run before ``rclpy.init``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILE_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"
PROFILE_FILE = "fastdds_large_data.xml"


def default_config_dir() -> Path:
    """Directory of the packaged config files: the install share dir, else the source tree."""
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            share = Path(get_package_share_directory("memory_node")) / "config"
            if share.is_dir():
                return share
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / "config"


def large_data_profile() -> Path:
    """Path of the packaged Fast DDS profile for large images (32 MiB SHM segment + UDPv4)."""
    installed = default_config_dir() / PROFILE_FILE
    if installed.is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "config" / PROFILE_FILE


def use_large_data_profile() -> str:
    """Point Fast DDS at the packaged large-data profile unless the user chose a profile.

    Call before ``rclpy.init`` (Fast DDS reads the variable when it creates the participant);
    child processes inherit it. A variable set to '' keeps Fast DDS's defaults (opt-out).
    Returns the profile file in effect ('' when none).
    """
    for name in (PROFILE_ENV, "FASTDDS_DEFAULT_PROFILES_FILE"):
        if name in os.environ:
            return os.environ[name]
    path = large_data_profile()
    if not path.is_file():
        return ""
    os.environ[PROFILE_ENV] = str(path)
    return str(path)
