"""The commands: thin loops around one landing sequence (landing.py)."""
