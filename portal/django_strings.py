"""Django's own strings that its zh_Hans catalogue lacks (as of Django 6.1).

Our catalogue translates them; naming them here keeps them in it when `make messages`
re-extracts the sources (an entry no source mentions is dropped as obsolete).
"""

from django.utils.translation import gettext_noop

DJANGO_STRINGS_MISSING_FROM_ITS_CATALOGUE = (
    gettext_noop("- Select an option -"),  # admin choice widgets' empty choice
    gettext_noop("Filter by %(field_name)s"),  # admin changelist filter headings
)
