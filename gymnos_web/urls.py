from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from experiments.api import api

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sweeps/", include("sweeps.urls")),
    path("", include("experiments.urls")),
]
