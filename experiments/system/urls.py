"""This feature's pages (included in experiments/urls.py under the experiments namespace)."""

from django.urls import path

from experiments.system import views

urlpatterns = [
    path("executions/<int:execution_id>/system.json", views.execution_data, name="execution-system"),
    path("compare/system.json", views.compare_data, name="compare-system"),
    path("s/<str:token>/system.json", views.shared_data, name="shared-system"),
]
