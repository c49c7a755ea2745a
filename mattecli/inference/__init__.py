"""Running matting methods on images and videos."""
