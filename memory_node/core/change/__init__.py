"""Change detection: the object store, the existence model and the change detector."""

from memory_node.core.change.config import ChangeConfig
from memory_node.core.change.detector import ChangeDetector, DetectorContext, FrameEvidence
from memory_node.core.change.store import ObjectStore

__all__ = ["ChangeConfig", "ChangeDetector", "DetectorContext", "FrameEvidence", "ObjectStore"]
