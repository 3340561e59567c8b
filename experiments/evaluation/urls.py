"""This feature's pages (included in experiments/urls.py under the experiments namespace)."""

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("executions/<int:execution_id>/evaluation.json", views.execution_data, name="execution-evaluation"),
    path("compare/evaluation.json", views.compare_data, name="compare-evaluation"),
    path("s/<str:token>/evaluation.json", views.shared_data, name="shared-evaluation"),
]
