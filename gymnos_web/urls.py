from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from experiments.views import events
from gymnos_web.api import api

handler400 = "gymnos_web.errors.bad_request"
handler403 = "gymnos_web.errors.permission_denied"
handler404 = "gymnos_web.errors.page_not_found"
handler500 = "gymnos_web.errors.server_error"

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    # A plain async view before the ninja API: ninja's views are sync, and a stream must not hold a thread.
    path("api/executions/<int:execution_id>/events", events.api_execution_events, name="api-execution-events"),
    path("api/", api.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sweeps/", include("sweeps.urls")),
    path("alerts/", include("alerts.urls")),
    path("", include("experiments.urls")),
]
