"""The patient path on a hospital's site. Other apps and partners link to these paths: keep them."""

from django.urls import path

from . import views

app_name = "registration"

urlpatterns = [
    path("departments/", views.department_list, name="departments"),
    path("departments/<slug:code>/", views.department_detail, name="department"),
    path("doctors/<int:pk>/", views.doctor_detail, name="doctor"),
    path("bookings/", views.booking_list, name="bookings"),
    path("bookings/new/", views.booking_new, name="booking_new"),
    path("bookings/<int:pk>/", views.booking_detail, name="booking"),
    path("bookings/<int:pk>/cancel/", views.booking_cancel_view, name="booking_cancel"),
    path("schedules/<int:pk>/waitlist/", views.waitlist_join_view, name="waitlist_join"),
    path("waitlist/<int:pk>/leave/", views.waitlist_leave_view, name="waitlist_leave"),
]
