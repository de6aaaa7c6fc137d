"""The worker's entry point: ``dramatiq tasks.worker`` (the Procfile's ``worker`` line).

Dramatiq imports this module in every worker process; importing it builds that
process's broker, declares the actors on it, and installs the runtime the actors use.
Nothing else in ``tasks`` does work on import.

Under ``dramatiq-gevent`` (the standard library monkey-patched before this import: the
worker's threads are greenlets), psycopg2 is made to wait for PostgreSQL through gevent
(psycogreen), as the gevent web does: its C code would otherwise block the whole process.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the web's directory, on the same host), every
worker process writes its metrics there and the web's ``/metrics`` includes them; the
directory must exist before prometheus_client is first imported, hence first here.
"""

import os

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

import dramatiq
from dramatiq.threading import is_gevent_active

from app.config import load_config
from app.gateways.jobs import DramatiqJobs
from app.runtime import build_runtime, install
from models.db import bind_database
from tasks import declare_actors
from tasks.broker import make_broker

if is_gevent_active():
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

config = load_config(require_secrets=True)
broker = make_broker("redis", config)
declare_actors(broker)
dramatiq.set_broker(broker)
install(build_runtime(config, jobs=DramatiqJobs(broker)))
bind_database(
    config.database_url,
    pool_size=config.database_pool_size,
    prepared_statements=config.database_prepared_statements,
)
