"""The networks.

vgg.py          `build_feature_extractor`: a frozen VGG19/VGG16 returning `{layer: activation}`
transformer.py  `build_stylizer`: the feed-forward image transformation network (Johnson et al.)
"""
