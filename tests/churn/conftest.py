"""The churn tests use the multi-node tests' fixtures: fresh overlays and harnesses whose
processes are all stopped at teardown, also when a test fails."""

from multinode.conftest import MakeHarness, MakeOverlay, make_harness, make_overlay

__all__ = ["MakeHarness", "MakeOverlay", "make_harness", "make_overlay"]
