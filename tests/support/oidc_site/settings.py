"""Django settings of the test OpenID Connect provider; its state is in ``$OIDC_SITE_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

SITE_DIR = Path(os.environ["OIDC_SITE_DIR"])
SECRET_KEY = os.environ.get("OIDC_SITE_SECRET", "test-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.support.oidc_site.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [str(Path(__file__).parent / "templates")],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SITE_DIR / "provider.sqlite3")}}
USE_TZ = True
LOGIN_URL = "/accounts/login/"
SITE_URL = os.environ.get("OIDC_SITE_URL")
OIDC_USERINFO = "tests.support.oidc_site.claims.userinfo"
OIDC_EXTRA_SCOPE_CLAIMS = "tests.support.oidc_site.claims.GroupsClaims"
OIDC_IDTOKEN_INCLUDE_CLAIMS = False  # like many providers: the profile and groups come from userinfo
OIDC_SKIP_CONSENT_EXPIRE = 0
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
