"""Qunfu (群福): operations bot for bank community welfare groups."""

__version__ = "0.1.0"
