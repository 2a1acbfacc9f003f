"""Viewers of the memory: a Rerun recording of frames, objects, relations and changes."""
