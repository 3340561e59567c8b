"""Share links: make, list and revoke them; and what a visitor holding one may see.

A visitor with ``/s/<token>/`` sees that one execution (or that comparison) read-only: charts,
metrics, config, the log tail, and files only if the sharer allowed downloads. Nothing else
is reachable with it: every other page still asks for a login.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.models import Entry
from audit.recording import record
from experiments.access import (
    SHARE,
    get_active_share,
    get_execution_by_id_for_user,
    get_share_for_revoke,
    require_role,
    require_share_downloads,
    share_links_for,
)
from experiments.comparison import load_runs
from experiments.display import execution_url
from experiments.forms import CompareShareForm, ShareForm
from experiments.models import Execution, ShareLink
from experiments.views import compare, downloads
from experiments.views.executions import Links, log_payload, page_context, payload


def share_url(request: HttpRequest, link: ShareLink) -> str:
    return request.build_absolute_uri(reverse("experiments:shared", args=[link.token]))


@login_required
@require_POST
def create_for_execution(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    assert request.user.is_authenticated  # login_required let only users in
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_role(request.user, execution, SHARE)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Could not share: " + "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect(execution_url(execution))
    link = ShareLink.objects.create(
        kind=ShareLink.Kind.EXECUTION,
        execution=execution,
        created_by=request.user,
        allow_downloads=form.cleaned_data["allow_downloads"],
        expires_at=form.cleaned_data["expires_in"],
    )
    record(request, Entry.Action.SHARE_CREATE, execution=execution, target=f"share link {link.pk}")
    messages.success(request, f"Share link created: {share_url(request, link)}", extra_tags="share")
    return redirect(execution_url(execution))


@login_required
@require_POST
def create_for_comparison(request: HttpRequest) -> HttpResponseRedirect:
    assert request.user.is_authenticated  # login_required let only users in
    form = CompareShareForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Could not share: " + "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect(reverse("experiments:compare") + f"?runs={request.POST.get('runs', '')}")
    executions, missing = load_runs(form.cleaned_data["runs"], request.user)
    back = (
        reverse("experiments:compare")
        + f"?runs={form.cleaned_data['runs'] and ','.join(map(str, form.cleaned_data['runs']))}"
    )
    if missing or not executions:
        messages.error(request, f"Could not share: runs {', '.join(map(str, missing))} do not exist.")
        return redirect(back)
    for execution in executions:
        require_role(request.user, execution, SHARE)
    link = ShareLink.objects.create(
        kind=ShareLink.Kind.COMPARISON,
        runs=[e.pk for e in executions],
        created_by=request.user,
        allow_downloads=form.cleaned_data["allow_downloads"],
        expires_at=form.cleaned_data["expires_in"],
    )
    record(request, Entry.Action.SHARE_CREATE, target=f"share link {link.pk}", runs=link.runs)
    messages.success(request, f"Share link created: {share_url(request, link)}", extra_tags="share")
    return redirect(back)


@login_required
@require_POST
def revoke(request: HttpRequest, share_id: int) -> HttpResponseRedirect:
    link = get_share_for_revoke(request.user, share_id)
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        record(request, Entry.Action.SHARE_REVOKE, execution=link.execution, target=f"share link {link.pk}")
    messages.success(request, "Share link revoked: it no longer opens anything.")
    next_url = request.POST.get("next", "")
    return redirect(
        next_url if next_url.startswith("/") and not next_url.startswith("//") else reverse("experiments:shares")
    )


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    assert request.user.is_authenticated  # login_required let only users in
    links = share_links_for(request.user)
    now = timezone.now()
    rows = [{"link": link, "url": share_url(request, link), "active": link.is_active(now)} for link in links]
    return render(request, "experiments/share_list.html", {"rows": rows})


# --- what a visitor with the link sees ---------------------------------------------------------


def _comparison(link: ShareLink) -> list[Execution]:
    executions, _ = load_runs(link.runs)
    return executions


@require_GET
def view(request: HttpRequest, token: str) -> HttpResponse:
    link = get_active_share(token)
    if link.kind == ShareLink.Kind.EXECUTION:
        assert link.execution is not None  # an execution link always names its execution
        context = page_context(request, link.execution, Links(link.execution, share=link))
        return render(request, "experiments/execution_detail.html", {**context, "share": link})
    context = compare.compare_context(_comparison(link), [])
    context.update(
        share=link,
        shared=True,
        data_url=reverse("experiments:shared-data", args=[token]),
        csv_url=reverse("experiments:shared-csv", args=[token]) if link.allow_downloads else None,
    )
    return render(request, "experiments/compare.html", context)


@require_GET
def data(request: HttpRequest, token: str) -> JsonResponse:
    link = get_active_share(token)
    if link.kind == ShareLink.Kind.EXECUTION:
        assert link.execution is not None  # an execution link always names its execution
        return JsonResponse(payload(request, link.execution, Links(link.execution, share=link)))
    return JsonResponse(compare.compare_data(_comparison(link), run_url=None))


@require_GET
def log(request: HttpRequest, token: str) -> JsonResponse:
    link = get_active_share(token, ShareLink.Kind.EXECUTION)
    assert link.execution is not None  # an execution link always names its execution
    return JsonResponse(log_payload(link.execution, request.GET.get("offset")))


@require_GET
def file(request: HttpRequest, token: str, path: str) -> FileResponse:
    link = get_active_share(token, ShareLink.Kind.EXECUTION)
    require_share_downloads(link)
    assert link.execution is not None  # an execution link always names its execution
    return downloads.serve_file(link.execution, path)


@require_GET
def folder_zip(request: HttpRequest, token: str) -> StreamingHttpResponse:
    link = get_active_share(token, ShareLink.Kind.EXECUTION)
    require_share_downloads(link)
    assert link.execution is not None  # an execution link always names its execution
    return downloads.serve_zip(link.execution)


@require_GET
def export(request: HttpRequest, token: str) -> StreamingHttpResponse:
    link = get_active_share(token, ShareLink.Kind.COMPARISON)
    require_share_downloads(link)
    executions = _comparison(link)
    if not executions:
        raise Http404("The runs of this comparison no longer exist.")
    return compare.csv_response(executions)
