"""Click-based matting with uncertainty (Wei, Chen, Zhou, Liao, Zhao, Zhang, Yu, CVPR 2021)."""
