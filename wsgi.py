"""The web's entry point: ``gunicorn wsgi:app`` (and ``flask --app wsgi``).

``create_app()`` builds the process's runtime once: configuration, Redis, Stripe, mail
and the Dramatiq broker that the views enqueue through.
"""

import gc

from app import create_app

app = create_app()
# Everything built so far (modules, the app, the routes, the schemas) lives as long as
# the process: the collector need not scan it again on every full collection.
gc.freeze()
