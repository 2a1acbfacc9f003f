"""Command-line tools for users: export, bag replay, viewers."""
