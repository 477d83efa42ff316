"""Read queries of the registration app (pages and, later, the API)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Department


@dataclass
class DepartmentNode:
    department: Department
    children: list[Department] = field(default_factory=list)


def department_tree() -> list[DepartmentNode]:
    """Active departments as top-level nodes with their children, in one query."""
    nodes: dict[int, DepartmentNode] = {}
    roots: list[DepartmentNode] = []
    departments = list(Department.objects.filter(is_active=True).order_by("sort_order", "pk"))
    for d in departments:
        if d.parent_id is None:
            nodes[d.pk] = DepartmentNode(d)
            roots.append(nodes[d.pk])
    for d in departments:
        if d.parent_id is not None and d.parent_id in nodes:
            nodes[d.parent_id].children.append(d)
    return roots
