"""Versioned contracts at every boundary: Arrow schemas for data, JSON Schemas for specs."""
