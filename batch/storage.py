"""Beam's Cloud Storage IO against the storage emulator (``STORAGE_EMULATOR_HOST``).

google-cloud-storage, which Beam's GCS IO uses, sends its requests to the emulator when
``STORAGE_EMULATOR_HOST`` is set. Beam first looks up Application Default Credentials
for it, and where there are none it retries for about 16 s (and asks the GCE metadata
server) before it connects anonymously. An emulator needs no credentials: with the
variable set, the lookup's outcome "no credentials" is recorded before Beam asks, in the
cache Beam keeps for it (``apache_beam.internal.gcp.auth``, Beam 2.77 as pinned). Nothing
changes when the variable is unset, as on Dataflow.
"""

from __future__ import annotations

import os


def connect_emulator_anonymously() -> bool:
    """With ``STORAGE_EMULATOR_HOST`` set, make Beam's GCS IO connect anonymously at once."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return False
    from apache_beam.internal.gcp import auth

    credentials = auth._Credentials
    with credentials._credentials_lock:
        credentials._credentials = None
        credentials._credentials_init = True
    return True
