"""Keep every process's cached host -> hospital map honest when hospitals or domains change."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portal.middleware import domain_cache

from .models import Domain, Hospital


@receiver([post_save, post_delete], sender=Domain)
@receiver([post_save, post_delete], sender=Hospital)
def _invalidate_domain_cache(sender, **kwargs) -> None:
    domain_cache.invalidate()
