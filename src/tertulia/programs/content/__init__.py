"""Curriculum files: reading them with line numbers, linting them, importing them."""
