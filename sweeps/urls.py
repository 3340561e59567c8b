"""The sweeps' pages, under /sweeps/."""

from django.urls import URLPattern, path

from sweeps import views

app_name = "sweeps"

urlpatterns: list[URLPattern] = [
    path("", views.index, name="list"),
    path("new/", views.new, name="new"),
    path("<int:sweep_id>/", views.detail, name="detail"),
    path("<int:sweep_id>/data.json", views.data, name="data"),
    path("<int:sweep_id>/cancel/", views.cancel, name="cancel"),
    path("<int:sweep_id>/share/", views.share, name="share"),
    path("shares/<int:share_id>/revoke/", views.revoke, name="revoke-share"),
    path("s/<str:token>/", views.shared, name="shared"),
    path("s/<str:token>/data.json", views.shared_data, name="shared-data"),
]
