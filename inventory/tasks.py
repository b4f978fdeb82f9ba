"""Celery tasks: one line of plumbing around a service each; the rules live in the services."""
from celery import Task, shared_task
from django.db import OperationalError

from inventory.services.his import deliver_due_charges


@shared_task(
    bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, retry_jitter=True,
    max_retries=5,
)
def deliver_his_charges(self: Task, limit: int = 100) -> dict:
    """Send the due HIS charges (the outbox relay); run it every few seconds from beat.

    Retried only when the database is unreachable. An unreachable HIS is not an error of the task:
    the relay records it on each delivery and retries it on its own schedule.
    """
    return deliver_due_charges(limit=limit).as_dict()

