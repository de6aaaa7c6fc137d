"""Tests for models/."""
