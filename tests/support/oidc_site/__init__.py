"""A tiny Django site that runs ``django-oidc-provider``: the OpenID Connect provider of the tests
(``tests/support/oidc_provider.py`` starts it)."""
