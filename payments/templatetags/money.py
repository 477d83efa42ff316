from django import template

from portal.money import fen_to_yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    """{{ order.total_fen|yuan }} -> ¥1,234.50"""
    if fen in (None, ""):
        return ""
    return f"¥{fen_to_yuan(int(fen))}"
