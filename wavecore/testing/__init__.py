"""Helpers for testing wavecore and cross-checking it against peers."""
