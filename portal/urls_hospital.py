"""URLs of a hospital's host (the hospital's schema)."""

from django.urls import include, path

from payments import urls as payments_urls
from portal import health, views
from portal.accounts import sso
from portal.admin_sites import hospital_admin_site
from portal.notifications import views as inbox_views
from portal.partners.urls import hospital_urlpatterns as partner_api
from registration import bill_urls
from registration import views as registration_views

urlpatterns = [
    path("", registration_views.hospital_home, name="home"),
    path("accounts/", include("portal.accounts.urls")),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/preferences/", inbox_views.preferences, name="inbox_preferences"),
    path("inbox/preferences/messaging-app/bind/", inbox_views.messaging_app_bind,
         name="inbox_messaging_app_bind"),
    path("inbox/preferences/messaging-app/callback/", inbox_views.messaging_app_callback,
         name="inbox_messaging_app_callback"),
    path("inbox/preferences/messaging-app/unbind/", inbox_views.messaging_app_unbind,
         name="inbox_messaging_app_unbind"),
    # The site's /payments/ section: payments' order pages and callback, and the clinic bill
    # pages registration owns, one `payments` URL namespace (payments:bill and the rest).
    path("payments/", include(([*payments_urls.urlpatterns, *bill_urls.urlpatterns],
                               payments_urls.app_name))),
    path("", include("consult.urls")),
    path("sso/callback/", sso.callback, name="sso_callback"),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("health/", health.health, name="health"),
    path("admin/", hospital_admin_site.urls),
    *partner_api,
    path("", include("registration.urls")),
]
