"""Per-project secrets: encrypted at rest, referenced as ``#{secrets.NAME}``, masked in output."""

from kraken.secrets.crypto import SecretBox, SecretsKeyError, secret_box
from kraken.secrets.refs import MASK, Masker, referenced_names, substitute
from kraken.secrets.store import configure, job_masker, job_secrets, project_secrets

__all__ = [
    "MASK",
    "Masker",
    "SecretBox",
    "SecretsKeyError",
    "configure",
    "job_masker",
    "job_secrets",
    "project_secrets",
    "referenced_names",
    "secret_box",
    "substitute",
]
