"""Where the model file comes from: a local path, or a verified Cloud Storage cache."""
