"""The training engine shared by every family."""
