"""The dashboard's URLs, grouped by object."""

from django.urls import include, path

from experiments.views import (
    compare,
    downloads,
    events,
    executions,
    experiments,
    projects,
    publish,
    queue,
    runs,
    share,
    sweep_events,
)

app_name = "experiments"

RUN = "experiments/<str:experiment>/executions/<str:folder>/"

urlpatterns = [
    # experiments
    path("", experiments.index, name="index"),
    path("experiments/<str:experiment>/", experiments.detail, name="experiment"),
    # one execution: the permalink, its files, and (by id, for runs still without a folder) its data
    path(RUN, executions.detail, name="execution"),
    path(RUN + "files/<path:path>", downloads.file, name="execution-file"),
    path(RUN + "download.zip", downloads.folder_zip, name="execution-zip"),
    path("executions/<int:execution_id>/", executions.by_id, name="execution-by-id"),
    path("executions/<int:execution_id>/data.json", executions.data, name="execution-data"),
    path("executions/<int:execution_id>/log.json", executions.log, name="execution-log"),
    path("executions/<int:execution_id>/events", events.execution_events, name="execution-events"),
    path("executions/<int:execution_id>/cancel/", executions.cancel, name="cancel"),
    path("executions/<int:execution_id>/resume/", executions.resume, name="resume"),
    path("executions/<int:execution_id>/share/", share.create_for_execution, name="share-execution"),
    path("executions/<int:execution_id>/publish-token/", publish.create_token, name="publish-token"),
    # comparisons
    path("compare/", compare.page, name="compare"),
    path("compare/data.json", compare.data, name="compare-data"),
    path("compare/export.csv", compare.export, name="compare-csv"),
    path("compare/share/", share.create_for_comparison, name="share-comparison"),
    # launching
    path("runs/new/", runs.new, name="new-run"),
    path("runs/remote/", publish.external_run, name="external-run"),
    path("queue/", queue.page, name="queue"),
    path("queue/fragment/", queue.fragment, name="queue-fragment"),
    path("events/runs", events.runs_events, name="runs-events"),
    path("sweeps/<int:sweep_id>/events", sweep_events.sweep_events, name="sweep-events"),
    # share links: managing them, and what their visitors see
    path("shares/", share.mine, name="shares"),
    path("shares/<int:share_id>/revoke/", share.revoke, name="revoke-share"),
    path("s/<str:token>/", share.view, name="shared"),
    path("s/<str:token>/data.json", share.data, name="shared-data"),
    path("s/<str:token>/log.json", share.log, name="shared-log"),
    path("s/<str:token>/events", events.shared_events, name="shared-events"),
    path("s/<str:token>/files/<path:path>", share.file, name="shared-file"),
    path("s/<str:token>/download.zip", share.folder_zip, name="shared-zip"),
    path("s/<str:token>/export.csv", share.export, name="shared-csv"),
    # projects and their members (granting and revoking: maintainers)
    path("projects/", projects.mine, name="projects"),
    path("projects/<str:project>/", projects.detail, name="project"),
    path("projects/<str:project>/grant/", projects.grant, name="project-grant"),
    path("projects/<str:project>/revoke/", projects.revoke, name="project-revoke"),
    # Keras RemoteMonitor
    path("publish/epoch/end/<str:token>/", publish.epoch_end, name="publish"),
    # the features beside the core
    path("", include("experiments.search.urls")),
    path("", include("experiments.system.urls")),
    path("", include("experiments.curation.urls")),
    path("", include("experiments.evaluation.urls")),
]
