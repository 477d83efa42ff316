"""Consultations, the doctor workbench and records on a hospital's site."""

from django.urls import path

from . import views

app_name = "consult"

urlpatterns = [
    path("consult/", views.home, name="home"),
    path("consult/start/", views.start, name="start"),
    path("consult/triage/<int:pk>/", views.triage_result, name="triage"),
    path("consult/<int:pk>/", views.detail, name="detail"),
    path("consult/<int:pk>/messages/", views.poll, name="poll"),
    path("consult/<int:pk>/send/", views.send, name="send"),
    path("consult/<int:pk>/close/", views.close, name="close"),
    path("consult/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("consult/<int:pk>/rate/", views.rate, name="rate"),
    path("consult/images/<int:pk>/", views.attachment, name="attachment"),
    path("workbench/", views.workbench, name="workbench"),
    path("workbench/bookings/<int:pk>/check-in/", views.workbench_check_in,
         name="workbench_check_in"),
    path("records/", views.record_list, name="records"),
    path("records/<int:pk>/", views.record_detail, name="record"),
]
