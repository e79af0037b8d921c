"""The Cloud Function itself (target ``predict`` in :mod:`serving.function.main`).

Its own folder because functions-framework loads the function from a file and appends that
file's folder to ``sys.path``: here that adds nothing but the entry point. The checkout's
``main.py`` (what Cloud Functions deploys) and ``python -m serving`` (the installed package)
serve this same function.
"""
