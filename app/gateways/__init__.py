"""Adapters to outside systems; the only code that imports ``stripe`` or ``smtplib``."""
