from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import check_for_language
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from portal.accounts.services import account_set_language


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, remembered on the account so every hospital site follows."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if (request.user.is_authenticated and check_for_language(language)
            and language in dict(settings.LANGUAGES)):
        account_set_language(user=request.user, language=language)
    return response
