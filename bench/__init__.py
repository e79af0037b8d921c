"""Side-by-side benchmark of the function against Flask + TensorFlow (``python -m bench``)."""
