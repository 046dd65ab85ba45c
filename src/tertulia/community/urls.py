from django.urls import path

from tertulia.community import views

app_name = "community"
urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/items/", views.inbox_items, name="inbox_items"),
    path("inbox/seen/", views.inbox_seen_view, name="inbox_seen"),
    path("inbox/search/", views.search_view, name="search"),
    path("inbox/alerts/<int:alert_id>/resolve/", views.alert_resolve_view, name="alert_resolve"),
    path("inbox/posts/<int:post_id>/approve/", views.post_approve_view, name="post_approve"),
    path("inbox/posts/<int:post_id>/retract/", views.post_retract_view, name="post_retract"),
    path(
        "inbox/messages/<int:message_id>/handled/",
        views.message_handled_view,
        name="message_handled",
    ),
    path("inbox/cohorts/<int:cohort_id>/", views.cohort_view, name="cohort"),
    path("inbox/cohorts/<int:cohort_id>/items/", views.cohort_items, name="cohort_items"),
    path("inbox/cohorts/<int:cohort_id>/post/", views.group_post_view, name="group_post"),
    path("inbox/members/<int:enrollment_id>/", views.thread_view, name="thread"),
    path("inbox/members/<int:enrollment_id>/items/", views.thread_items, name="thread_items"),
    path(
        "inbox/members/<int:enrollment_id>/reply/", views.private_reply_view, name="private_reply"
    ),
    path("supervisor/", views.supervisor_view, name="supervisor"),
    path("supervisor/<slug:slug>/", views.supervisor_view, name="supervisor_program"),
]
