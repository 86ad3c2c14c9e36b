"""Fast (feed-forward) stylizers, Johnson et al. 2016: train a network for one style, then paint
any photo with one forward pass. The network is `tfstyle.models.transformer`, its settings
`tfstyle.settings.train`, its export `tfstyle.export.stylizer` and `tfstyle.export.tflite`.

    data.py      training photos: folder listing and the tf.data pipeline (the only file reads)
    train.py     `train_stylizer`: model.fit with the perceptual loss, checkpoints, previews
    stylizer.py  `FastStylizer`: load a trained network and apply it
"""
