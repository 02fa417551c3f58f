"""What the provider says of its users: ``preferred_username`` (profile scope) and a ``groups``
claim (the ``groups`` scope) from the user's Django groups."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims: dict[str, Any], user: Any) -> dict[str, Any]:
    claims["preferred_username"] = user.username
    claims["name"] = user.get_full_name() or user.username
    claims["email"] = user.email
    return claims


class GroupsClaims(ScopeClaims):  # type: ignore[misc]
    info_groups = (_("Groups"), _("The groups you are in."))

    def scope_groups(self) -> dict[str, Any]:
        return {"groups": sorted(g.name for g in self.user.groups.all())}
