"""The phone service shared by the GUI and the CLI: account, overlay, buddies, calls, history."""
