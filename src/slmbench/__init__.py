"""slmbench: how well small language models write code, and what each answer costs."""

__version__ = "0.1.0"
