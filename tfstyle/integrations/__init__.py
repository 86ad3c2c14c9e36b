"""tfstyle inside other tools: Keras training, callbacks, notebooks. (Named `integrations`,
not `keras`, so that `import keras` inside tfstyle can never mean this package.)

    keras_losses.py  `ContentLoss`, `StyleLoss`, `PerceptualLoss`: Keras losses for model.fit
    callbacks.py     `stylize` callbacks: TensorBoard, loss history, loss plot; side outputs
    colab.py         live previews, saving and downloading in Colab and Jupyter
"""
