"""Deep Image Matting (Xu et al., CVPR 2017): VGG16 encoder-decoder plus refinement, trimap-guided."""
