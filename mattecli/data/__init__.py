"""Dataset building blocks: compositing, trimaps, background plates, samples, manifests."""
