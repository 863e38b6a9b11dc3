"""Placeholder: this adapter lands in a later release."""
