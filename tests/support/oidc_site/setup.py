"""Creates the provider's users, groups, client and signing key from ``$OIDC_SITE_DIR/setup.json``
(run after ``migrate``, with ``DJANGO_SETTINGS_MODULE`` set)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import django


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group, User
    from oidc_provider.models import Client, ResponseType, RSAKey

    spec = json.loads((Path(os.environ["OIDC_SITE_DIR"]) / "setup.json").read_text())
    for name, password in spec["users"].items():
        User.objects.create_user(username=name, password=password, email=f"{name}@example.org")
    for group, members in spec["groups"].items():
        g = Group.objects.create(name=group)
        g.user_set.set(User.objects.filter(username__in=members))
    RSAKey.objects.create(key=spec["rsa_key"])
    client = Client.objects.create(
        name="Kraken",
        client_type="confidential",
        client_id=spec["client_id"],
        client_secret=spec["client_secret"],
        jwt_alg="RS256",
        require_consent=True,
        reuse_consent=False,
        redirect_uris=[spec["redirect_uri"]],
        scope=["openid", "profile", "email", "groups"],
    )
    client.response_types.add(ResponseType.objects.get(value="code"))


if __name__ == "__main__":
    main()
