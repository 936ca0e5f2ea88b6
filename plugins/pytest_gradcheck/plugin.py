"""The pytest11 entry point (placeholder while the plugin is written)."""
