from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("notify/<slug:provider>/", views.notify, name="notify"),
    path("orders/<str:out_trade_no>/", views.order_detail, name="order"),
    path("orders/<str:out_trade_no>/pay/", views.order_pay, name="order_pay"),
    path("orders/<str:out_trade_no>/return/", views.order_return, name="order_return"),
]
