"""Semantic Human Matting (Chen et al., ACM MM 2018): T-Net trimap, M-Net alpha, fusion; no guidance."""
