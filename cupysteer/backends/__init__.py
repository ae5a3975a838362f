"""Execution backends of the expansion plan."""
