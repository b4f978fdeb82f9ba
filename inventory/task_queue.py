"""Queue a Celery task by its registered name.

Tasks import the services they wrap, so a service that must queue follow-up work (the reports of a
reconciliation run, the nightly runs of every hospital) names the task instead of importing
`inventory.tasks`. The app's `ready()` registers the tasks, so in-process (eager) mode finds them too.
"""
from celery import current_app
from celery.result import AsyncResult

RECONCILE_TASK = "inventory.tasks.reconcile_hospital_period"
RENDER_REPORTS_TASK = "inventory.tasks.render_reconciliation_reports"
RUN_BACKGROUND_JOB_TASK = "inventory.tasks.run_background_job"
DELIVER_NOTIFICATIONS_TASK = "inventory.tasks.deliver_notifications"


def queue_task(name: str, *args: object) -> AsyncResult:
    """Send task `name` with positional `args` (run at once when tasks run in process)."""
    return current_app.tasks[name].delay(*args)


def tasks_run_in_process() -> bool:
    return bool(current_app.conf.task_always_eager)
