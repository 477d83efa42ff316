"""Keep every process's cached keys and grants honest (auth.auth_cache) when they change."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenants.models import Domain, Hospital

from .auth import auth_cache
from .models import ApiKey, Grant, Partner


@receiver([post_save, post_delete], sender=Hospital)  # (other processes: via the host
@receiver([post_save, post_delete], sender=Domain)    # cache's generation counter)
@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=Partner)
@receiver([post_save, post_delete], sender=Grant)
def _invalidate_auth_cache(sender, **kwargs) -> None:
    auth_cache.invalidate()
