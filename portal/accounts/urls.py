from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("signup/", views.signup, name="signup"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("family/", views.family, name="family"),
    path("family/add/", views.family_add, name="family_add"),
    path("family/<int:pk>/", views.family_edit, name="family_edit"),
    path("family/<int:pk>/delete/", views.family_delete, name="family_delete"),
]
