"""This feature's pages (included in experiments/urls.py under the experiments namespace)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
