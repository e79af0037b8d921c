"""Cloud Function entry point (target ``predict``), as deployed from this folder.

The function is :func:`serving.function.main.predict`, so that the installed package
(``python -m serving``) serves the same one. Importing this module loads nothing heavy.
"""

from serving.function.main import predict

__all__ = ["predict"]
