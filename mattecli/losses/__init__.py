"""Training losses, by kind (matting losses now; segmentation/perceptual ones as families need them)."""
