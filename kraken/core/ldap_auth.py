"""LDAP login: bind as the service account, find the user, bind as the user, read their groups.

``ldap3`` is synchronous: ``authenticate`` runs in a worker thread (``asyncio.to_thread``), never
on the event loop.  A directory that cannot be reached, or that refuses the service account, is
``LdapUnavailable`` (the API answers 503); a user who is not found or whose password is wrong is
``None`` (401), with no difference between the two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ldap3 import SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException, LDAPInvalidCredentialsResult
from ldap3.utils.conv import escape_filter_chars

from kraken.core.config import Settings

log = logging.getLogger(__name__)


class LdapUnavailable(Exception):
    """The directory cannot be used now: down, unreachable, or the service account is refused."""


@dataclass(frozen=True)
class LdapIdentity:
    """Who logged in, and the names (``ldap_group_name_attribute``) and DNs of their groups."""

    username: str
    dn: str
    groups: frozenset[str]


def _server(settings: Settings) -> Server:
    assert settings.ldap_url is not None
    return Server(settings.ldap_url, connect_timeout=settings.ldap_timeout, get_info=None)


def _connection(settings: Settings, server: Server, dn: str, password: str) -> Connection:
    return Connection(
        server,
        user=dn,
        password=password,
        receive_timeout=settings.ldap_timeout,
        raise_exceptions=True,
        auto_bind=False,
        read_only=True,
    )


def _service_connection(settings: Settings, server: Server) -> Connection:
    assert settings.ldap_bind_dn is not None and settings.ldap_bind_password is not None
    conn = _connection(settings, server, settings.ldap_bind_dn, settings.ldap_bind_password.get_secret_value())
    try:
        conn.bind()
    except LDAPInvalidCredentialsResult as exc:
        raise LdapUnavailable(f"the LDAP server refused the service account {settings.ldap_bind_dn}") from exc
    except LDAPException as exc:
        raise LdapUnavailable(f"the LDAP server at {settings.ldap_url} cannot be reached: {exc}") from exc
    return conn


def _find_user(settings: Settings, conn: Connection, username: str) -> tuple[str, str] | None:
    """The user's DN and their name as the directory spells it (``ldap_username_attribute``), so
    that ``Alice`` and ``alice`` are one Kraken user."""
    assert settings.ldap_user_base is not None
    query = settings.ldap_user_filter.replace("{username}", escape_filter_chars(username))
    attribute = settings.ldap_username_attribute
    conn.search(settings.ldap_user_base, query, SUBTREE, attributes=[attribute], size_limit=2)
    entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    if len(entries) != 1:
        if entries:
            log.warning("LDAP: %d entries match the user %r; refusing the login", len(entries), username)
        return None
    value = entries[0]["attributes"].get(attribute)
    name = value[0] if isinstance(value, list) and value else value
    return str(entries[0]["dn"]), str(name) if name else username


def _groups(settings: Settings, conn: Connection, username: str, dn: str) -> frozenset[str]:
    if settings.ldap_group_base is None:
        return frozenset()
    query = settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn)).replace(
        "{username}", escape_filter_chars(username)
    )
    attribute = settings.ldap_group_name_attribute
    conn.search(settings.ldap_group_base, query, SUBTREE, attributes=[attribute])
    names: set[str] = set()
    for entry in conn.response or []:
        if entry.get("type") != "searchResEntry":
            continue
        names.add(str(entry["dn"]).lower())
        value = entry["attributes"].get(attribute)
        for name in value if isinstance(value, list) else [value]:
            if name:
                names.add(str(name).lower())
    return frozenset(names)


def _user_bind(settings: Settings, server: Server, dn: str, password: str) -> bool:
    conn = _connection(settings, server, dn, password)
    try:
        conn.bind()
        return True
    except LDAPInvalidCredentialsResult:
        return False
    except LDAPException as exc:
        raise LdapUnavailable(f"the LDAP server at {settings.ldap_url} cannot be reached: {exc}") from exc
    finally:
        conn.unbind()


def authenticate(settings: Settings, username: str, password: str) -> LdapIdentity | None:
    """The identity of ``username`` when ``password`` is theirs, else None (blocking: run in a thread).
    An empty password is refused here: many directories take it as an anonymous bind that succeeds."""
    if not password:
        return None
    server = _server(settings)
    conn = _service_connection(settings, server)
    try:
        found = _find_user(settings, conn, username)
        if found is None or not _user_bind(settings, server, found[0], password):
            return None
        dn, name = found
        return LdapIdentity(username=name, dn=dn, groups=_groups(settings, conn, name, dn))
    except LDAPException as exc:
        raise LdapUnavailable(f"the LDAP server at {settings.ldap_url} failed: {exc}") from exc
    finally:
        conn.unbind()
