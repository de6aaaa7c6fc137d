"""Tests for app/gateways/."""
