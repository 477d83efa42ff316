"""The partner API's URLs on both entry points (included by portal/urls_public.py and
portal/urls_hospital.py): one set of resource views, mounted under the platform's
/api/v1/hospitals/{code}/ and under a hospital host's /api/v1/."""

from django.conf import settings
from django.urls import include, path, re_path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from consult import api as consult_api
from portal.notifications import api as notifications_api
from registration import api as registration_api
from registration import bill_api

from .api import HospitalListView, NotFoundView

hospital_resources = ([*registration_api.urlpatterns, *bill_api.urlpatterns,
                       *consult_api.urlpatterns, *notifications_api.urlpatterns], "api")



class SchemaView(SpectacularAPIView):
    """The schema of the host asked: the platform's paths on the platform host, a hospital's
    own /api/v1/ paths on its host (django-tenants picks the URLconf per request)."""

    def get(self, request, *args, **kwargs):
        self.urlconf = getattr(request, "urlconf", None)
        return super().get(request, *args, **kwargs)


# The docs' UIs set styles from script (Swagger UI's and Redoc's own styling) and Redoc parses
# the schema in a worker it builds from a blob: these two pages alone allow both.
_DOCS_CSP = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
             "worker-src": [CSP.SELF, "blob:"]}

docs = [
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", csp_override(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
         name="api-docs"),
    path("api/redoc/", csp_override(_DOCS_CSP)(SpectacularRedocView.as_view(url_name="api-schema")),
         name="api-redoc"),
]

public_urlpatterns = [
    path("api/v1/hospitals/", HospitalListView.as_view(), name="api-hospitals"),
    path("api/v1/hospitals/<slug:hospital_code>/", include(hospital_resources)),
    *docs,
    path("fhir/r4/<slug:hospital_code>/", include("registration.fhir")),
    re_path(r"^api/", NotFoundView.as_view()),
]

hospital_urlpatterns = [
    path("api/v1/", include(hospital_resources)),
    *docs,
    re_path(r"^api/", NotFoundView.as_view()),
]
