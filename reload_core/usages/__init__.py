"""RELOAD Usages: the application-level uses of the overlay built on reload_core."""
