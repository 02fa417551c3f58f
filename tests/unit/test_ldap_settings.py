"""LDAP settings are refused at start when incomplete or wrong, naming the setting; the group
mapping gives the highest role of a user's groups."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kraken.control.provider_users import GroupMapping
from kraken.core.config import Settings

COMPLETE = {
    "ldap_url": "ldap://127.0.0.1:389",
    "ldap_bind_dn": "cn=reader,dc=x",
    "ldap_bind_password": "pw",
    "ldap_user_base": "ou=people,dc=x",
}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"ldap_bind_dn": "cn=reader,dc=x"}, "ldap_url: needed"),
        ({"ldap_group_roles": {"g": {"p": "viewer"}}}, "ldap_url: needed"),
        ({**COMPLETE, "ldap_bind_password": None}, "KRAKEN_LDAP_BIND_PASSWORD"),
        ({**COMPLETE, "ldap_url": "http://x"}, "not an ldap:// or ldaps:// URL"),
        ({**COMPLETE, "ldap_admin_groups": ["admins"]}, "ldap_group_base: needed"),
        ({**COMPLETE, "ldap_user_filter": "(uid=x)"}, "ldap_user_filter: must contain {username}"),
        ({**COMPLETE, "ldap_group_base": "ou=g", "ldap_group_roles": {"g": {"p": "boss"}}}, "ldap_group_roles.g.p"),
        ({**COMPLETE, "ldap_timeout": 0}, "ldap_timeout"),
    ],
)
def test_bad_ldap_settings_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**given)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_complete_ldap_settings_hide_the_password() -> None:
    settings = Settings(**COMPLETE)  # type: ignore[arg-type]
    assert "pw" not in repr(settings) and settings.ldap_bind_password is not None


def test_the_highest_role_of_the_groups_wins() -> None:
    mapping = GroupMapping.of(
        ["Admins"], {"Devs": {"a": "member", "b": "viewer"}, "leads": {"a": "maintainer"}, "all": {"b": "viewer"}}
    )
    assert mapping.roles(frozenset({"devs", "leads", "all"})) == {"a": "maintainer", "b": "viewer"}
    assert mapping.roles(frozenset({"devs"})) == {"a": "member", "b": "viewer"}
    assert mapping.roles(frozenset()) == {}
    assert mapping.is_admin(frozenset({"admins"})) is True and mapping.is_admin(frozenset({"devs"})) is False
    assert GroupMapping.of([], {}).is_admin(frozenset({"admins"})) is None
    assert mapping.projects() == {"a", "b"}
