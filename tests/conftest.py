"""Shared test configuration."""

import os

from hypothesis import settings

# CI runs one fixed set of examples: a property test that finds a new counterexample does it
# on a developer's machine, where the failure is saved and replayed, never as a CI flake.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
