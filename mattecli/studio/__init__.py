"""`mattecli studio`: interactive click matting in the browser (session core and local HTTP server)."""
