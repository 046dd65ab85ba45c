from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tertulia.messaging.channels.whatsapp.urls")),
    path("", include("tertulia.messaging.channels.twilio_sms.urls")),
    path("", include("tertulia.community.urls")),
    path("", include("tertulia.dashboard.urls")),
]
