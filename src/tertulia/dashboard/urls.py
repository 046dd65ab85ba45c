from django.urls import path

from tertulia.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("programs/<slug:slug>/", views.program, name="program"),
    path("programs/<slug:slug>/retention.png", views.retention_plot, name="retention_png"),
    path("programs/<slug:slug>/topics.png", views.topics_plot, name="topics_png"),
    path(
        "programs/<slug:slug>/campaigns/<int:campaign_id>/funnel-<str:code>.png",
        views.funnel_plot_png,
        name="funnel_png",
    ),
]
