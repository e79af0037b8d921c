"""One-off quantization CLI: a Keras model or SavedModel in, a verified ``.tflite`` out.

``python -m convert SRC -o OUT.tflite --mode MODE [options]``; see :mod:`convert.cli`.
Needs TensorFlow (``convert/requirements.txt``), so it is never deployed with the function.
"""
