"""File input/output shared by every subcommand: images, atomic writes, checkpoints."""
