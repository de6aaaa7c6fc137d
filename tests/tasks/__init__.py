"""Tests for tasks/ (actors on the stub broker)."""
