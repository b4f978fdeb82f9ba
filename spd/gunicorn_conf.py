"""gunicorn's configuration: the web container (docker/entrypoint.sh) and the benchmarks
(bench/server.py) run with this file, so that what is measured is what is deployed.

gthread workers: a request spends much of its time waiting for PostgreSQL (a use on a patient is
ten statements and a commit's WAL flush), and a thread of the same process serves another request
meanwhile; threads also hold the keep-alive connections of integrators and devices without tying
up a process (a sync worker closes every connection after one request). Python runs one thread at
a time per process, so the CPUs are used by processes: about one per core plus one, on a machine
shared with PostgreSQL. The reasons and the sizing are in docs/deployment.md.
"""
import os

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Idle keep-alive connections are kept this long (s): longer than a device's or integrator's pause
# between requests in a burst, shorter than a proxy's idle timeout.
keepalive = 5


def post_worker_init(worker) -> None:
    """The URL configuration loaded (and with it every view and serializer), as the first request
    would, then the start-up's objects frozen (spd/start_up.py)."""
    from importlib import import_module

    from django.conf import settings

    from spd.start_up import freeze_start_up_objects

    import_module(settings.ROOT_URLCONF)
    freeze_start_up_objects()
