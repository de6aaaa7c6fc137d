"""The web's entry point: ``gunicorn wsgi:app`` (and ``flask --app wsgi``).

``create_app()`` builds the process's runtime once: configuration, Redis, Stripe, mail
and the Dramatiq broker that the views enqueue through.
"""

from app import create_app

app = create_app()
