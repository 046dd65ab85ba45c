from django.urls import path

from tertulia.community import views

app_name = "community"
urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/items/", views.inbox_items, name="inbox_items"),
    path("inbox/alerts/<int:alert_id>/resolve/", views.alert_resolve_view, name="alert_resolve"),
    path("inbox/posts/<int:post_id>/approve/", views.post_approve_view, name="post_approve"),
    path(
        "inbox/messages/<int:message_id>/handled/",
        views.message_handled_view,
        name="message_handled",
    ),
]
