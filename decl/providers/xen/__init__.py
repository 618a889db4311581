"""Xen hosts with the xl toolstack, locally or over SSH."""
