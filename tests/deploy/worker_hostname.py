"""The hostname a task reports, so Celery workers sharing one machine in the scale-out test differ.

Airflow records ``task_instance.hostname`` from ``[core] hostname_callable`` (by default the
machine's FQDN), not from the Celery worker's ``--celery-hostname``: two workers on one machine
would look identical. The harness points ``hostname_callable`` here and gives every worker its
own ``CLUSTER_WORKER_NAME`` (the same name as its ``--celery-hostname``); the task process is a
child of the worker, so it inherits that worker's name. In production every worker is its own
container or machine and the default FQDN already tells them apart.
"""

from __future__ import annotations

import os
import socket


def celery_worker_name() -> str:
    return os.environ.get("CLUSTER_WORKER_NAME") or socket.getfqdn()
