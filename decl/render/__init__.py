"""Rendering plans and results: text for people, JSON for programs."""
