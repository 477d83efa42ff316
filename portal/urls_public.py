"""URLs of the platform host (public schema)."""

from django.urls import include, path

from portal import health, views
from portal.accounts import sso
from portal.admin_sites import platform_admin_site
from portal.notifications import views as inbox_views
from tenants import views as tenant_views

urlpatterns = [
    path("", tenant_views.platform_home, name="home"),
    path("accounts/", include("portal.accounts.urls")),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/preferences/", inbox_views.preferences, name="inbox_preferences"),
    path("inbox/preferences/messaging-app/bind/", inbox_views.messaging_app_bind,
         name="inbox_messaging_app_bind"),
    path("inbox/preferences/messaging-app/callback/", inbox_views.messaging_app_callback,
         name="inbox_messaging_app_callback"),
    path("inbox/preferences/messaging-app/unbind/", inbox_views.messaging_app_unbind,
         name="inbox_messaging_app_unbind"),
    path("sso/authorize/", sso.authorize, name="sso_authorize"),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("health/", health.health, name="health"),
    path("admin/", platform_admin_site.urls),
]
