"""Background jobs as people watch them: a page saying queued, running (n %), ready with its
download (or the run it made) or failed with why, kept up to date by jobs.js polling a small JSON
status. A job is its requester's: anyone else gets a 404.
"""
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from inventory.models import BackgroundJob
from inventory.web.access import web_page

POLL_MILLISECONDS = 1000


def _own_job(request: HttpRequest, pk: int) -> BackgroundJob:
    return get_object_or_404(BackgroundJob.objects.filter(requested_by=request.user), pk=pk)


def status_of(job: BackgroundJob) -> dict:
    """What the page shows of a job (also its JSON status)."""
    ready = job.status == BackgroundJob.Status.READY
    result_url = ""
    if ready and job.result.get("run") and job.kind == BackgroundJob.Kind.RECONCILIATION:
        result_url = reverse("web:reconciliation-run", args=[job.result["run"]])
    return {
        "id": job.pk, "kind": job.kind, "kind_label": str(job.get_kind_display()), "status": job.status,
        "status_label": str(job.get_status_display()), "progress": job.progress, "finished": job.finished,
        "download_url": reverse("web:job-download", args=[job.pk]) if ready and job.result_file else "",
        "file_name": job.result_name, "result_url": result_url, "error": job.error,
    }


@web_page()
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_job(request, pk)
    return render(request, "web/jobs/detail.html", {
        "job": job, "state": status_of(job), "poll": POLL_MILLISECONDS,
        "status_url": reverse("web:job-status", args=[job.pk]),
    })


@web_page()
def job_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(status_of(_own_job(request, pk)))


@web_page()
def job_download(request: HttpRequest, pk: int) -> FileResponse:
    job = _own_job(request, pk)
    if job.status != BackgroundJob.Status.READY or not job.result_file:
        raise Http404
    try:
        handle = job.result_file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    return FileResponse(handle, as_attachment=True, filename=job.result_name)
