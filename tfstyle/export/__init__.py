"""Artefacts for serving.

optimization.py  `export_optimization`: the whole optimisation as a TensorFlow SavedModel
stylizer.py      `export_stylizer`: a trained stylizer as a SavedModel plus `stylizer.keras`
tflite.py        `export_tflite`: a trained stylizer as a TFLite model of one size
"""
