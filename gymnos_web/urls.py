from django.contrib import admin
from django.urls import include, path

from experiments.api import api

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
