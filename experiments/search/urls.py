"""This feature's pages (included in experiments/urls.py under the experiments namespace)."""

from django.urls import URLPattern, path

from experiments.search import views

urlpatterns: list[URLPattern] = [
    path("experiments/<str:experiment>/explore.json", views.explore, name="explore"),
    path("experiments/<str:experiment>/count.json", views.count, name="count"),
]
