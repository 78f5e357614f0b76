"""Beam transforms (read and normalize, stage, land) shared by every runner, and the Dataflow job."""
