"""The alerts' pages, under /alerts/."""

from django.urls import URLPattern, path

from alerts import views

app_name = "alerts"

urlpatterns: list[URLPattern] = [
    path("", views.index, name="rules"),
    path("new/", views.create, name="new"),
    path("read/", views.read, name="read"),
    path("<int:rule_id>/delete/", views.delete, name="delete"),
    path("runs/<int:execution_id>/", views.subscribe_run, name="subscribe-run"),
    path("experiments/<int:experiment_id>/", views.subscribe_experiment, name="subscribe-experiment"),
    path("sweeps/<int:sweep_id>/", views.subscribe_sweep, name="subscribe-sweep"),
]
