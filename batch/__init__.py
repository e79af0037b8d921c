"""Batch prediction: ``python -m batch`` scores JSONL or pictures on Apache Beam.

The same model, decoding and labels as the function (:mod:`serving`), over files local or
in Cloud Storage, on Beam's DirectRunner or on Dataflow. Only :mod:`batch.pipeline` and the
launcher import Apache Beam; the function never imports this package.
"""
