"""Backbones in plain torch with torchvision's parameter names (VGG16, ResNet-34, ResNet-50).

torchvision is not a dependency; ImageNet weights load from a path the user gives, with
extra input channels zero-initialised so the network starts from the RGB features.
"""
