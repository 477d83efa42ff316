"""Keep every process's cached provider names honest when a hospital's payment settings change."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import PaymentSettings
from .services import provider_name_cache


@receiver([post_save, post_delete], sender=PaymentSettings)
def _forget_provider(sender, **kwargs) -> None:
    # At once (this process's next order in the same transaction reads the new row), and
    # again at commit: a name read and cached between the save and the commit is forgotten.
    provider_name_cache.invalidate()
    transaction.on_commit(provider_name_cache.invalidate)
