"""Deletion on request: forget visitors in every table and staged file, and keep them out of later loads."""
