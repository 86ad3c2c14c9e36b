"""Fast (feed-forward) stylizers, Johnson et al. 2016: train a network for one style, then paint
any photo with one forward pass.

    network.py   the image transformation network (`build_stylizer`)
    config.py    `TrainConfig`: every training setting and its default
    data.py      training photos: folder listing and the tf.data pipeline (the only file reads)
    train.py     `train_stylizer`: model.fit with the perceptual loss, checkpoints, previews
    stylizer.py  `FastStylizer`: load a trained network and apply it; export
    tflite.py    `export_tflite`: a trained network as a TFLite model of one size
"""
