"""The current Flask app's runtime and configuration, for views (flaskr's ``get_db``).

Kept out of the factory module so that blueprints never import ``app`` itself:
``create_app`` imports the blueprints, and they import this.
"""

from __future__ import annotations

import peewee
from flask import current_app

from app.config import Config
from app.runtime import Runtime

RUNTIME_EXTENSION = "checkout_runtime"
CONFIG_EXTENSION = "checkout_config"
DATABASE_EXTENSION = "checkout_database"


def current_runtime() -> Runtime:
    """The runtime the current app was built with."""
    runtime: Runtime = current_app.extensions[RUNTIME_EXTENSION]
    return runtime


def current_config() -> Config:
    """The configuration the current app was built with."""
    config: Config = current_app.extensions[CONFIG_EXTENSION]
    return config


def current_database() -> peewee.Database:
    """The database the current app bound its models to."""
    database: peewee.Database = current_app.extensions[DATABASE_EXTENSION]
    return database
