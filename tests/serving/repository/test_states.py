"""serving.repository.states: one table from our states to TF Serving's and Triton's names."""

from __future__ import annotations

from serving.repository.states import VersionState

TF_SERVING = {"START", "LOADING", "AVAILABLE", "UNLOADING", "END"}  # ModelVersionStatus.State
TRITON = {"READY", "UNAVAILABLE", "LOADING"}  # the repository index's states


def test_every_state_has_both_names():
    assert {state.tf_serving for state in VersionState} == TF_SERVING
    assert {state.triton for state in VersionState} <= TRITON
    assert VersionState.AVAILABLE.triton == "READY"
    assert [s for s in VersionState if s.triton == "READY"] == [VersionState.AVAILABLE]
    assert [s for s in VersionState if s.tf_serving == "END"] == [
        VersionState.UNLOADED,
        VersionState.FAILED,
    ]
