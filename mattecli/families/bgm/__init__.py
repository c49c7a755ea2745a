"""Background Matting (Sengupta et al., CVPR 2020): ResnetConditionHR with a captured plate, soft segmentation and motion cues."""
