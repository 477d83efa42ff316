"""The clinic bill pages' URLs. They sit in the site's /payments/ section with payments' own
pages, under the `payments` URL namespace (`payments:bills`, `payments:bill`: the names every
link and template uses); portal/urls_hospital.py mounts both lists there."""

from django.urls import path

from . import bill_views

urlpatterns = [
    path("bills/", bill_views.bill_list, name="bills"),
    path("bills/<str:bill_no>/", bill_views.bill_detail, name="bill"),
]
