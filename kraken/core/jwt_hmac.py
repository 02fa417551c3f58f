"""PyJWT for the HMAC-signed (HS256) tokens Kraken makes, without the cryptography package.

PyJWT imports ``cryptography`` whenever it is installed, for the RSA/EC/EdDSA algorithms Kraken
never uses; that is ~7 MB in every server that reads a login token (issue #13). Imported here,
the first time, with ``cryptography`` hidden, PyJWT offers the HMAC algorithms only: what it
signs and accepts with ``algorithms=["HS256"]`` is unchanged. Import this module at the top of a
module loaded at start-up (never first from a worker thread): while PyJWT loads, ``cryptography``
cannot be imported by another thread.
"""

from __future__ import annotations

import sys

if "jwt" not in sys.modules and "cryptography" not in sys.modules:
    sys.modules["cryptography"] = None  # type: ignore[assignment]  # import raises ModuleNotFoundError
    try:
        import jwt
    finally:
        del sys.modules["cryptography"]

import jwt  # the module itself is what this one provides

__all__ = ["jwt"]
