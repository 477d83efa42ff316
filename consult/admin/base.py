"""What the consult admins share: inlines that follow their parent's role rules, and a
read-only admin."""

from __future__ import annotations


class EditableInline:
    """Inlines follow their parent admin's role rules for every permission (Django would ask
    auth model permissions, which hospital staff do not have)."""

    def _parent(self):
        return self.admin_site.get_model_admin(self.parent_model)

    def has_view_permission(self, request, obj=None):
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

