"""Sign and verify the signature header of Speech web hook callbacks.

When a web hook is registered with a secret, the service sends every callback with
``X-MicrosoftSpeechServices-Signature``: in the spec's words (WebHooks_Ping, WebHooks_Test)
"an SHA256 hash of the payload with the secret as HMAC key. The hash is base64 encoded."
That is ``base64(HMAC-SHA256(key=secret, msg=body))`` over the raw request body bytes, as
received: verify before parsing, because re-serialized JSON differs byte for byte.

Reference: https://learn.microsoft.com/rest/api/speechtotext/web-hooks/create
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The callback header carrying ``base64(HMAC-SHA256(secret, body))``.
SIGNATURE_HEADER = "X-MicrosoftSpeechServices-Signature"
#: The callback header naming the event (e.g. ``ping``, ``challenge``, a registered event).
EVENT_HEADER = "X-MicrosoftSpeechServices-Event"

_DIGEST_SIZE = hashlib.sha256().digest_size


def _digest(secret: str, body: bytes) -> bytes:
    if not secret:
        # The service does not sign when the secret is empty, and an empty HMAC key is one
        # anyone can use: accepting it would let any caller forge a valid signature.
        raise ValueError("secret must not be empty")
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


def sign(secret: str, body: bytes) -> str:
    """The signature header value the service sends for ``body``: base64 HMAC-SHA256.

    Useful to test a callback receiver. Raises ValueError for an empty secret.
    """
    return base64.b64encode(_digest(secret, body)).decode("ascii")


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` (the header value) is the service's signature of ``body``.

    False for a missing, empty or malformed header (not base64, wrong length) as well as
    for a wrong one; the comparison takes constant time. Raises ValueError for an empty
    secret, which is a configuration error, not a bad request.
    """
    expected = _digest(secret, body)
    if not signature:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        # binascii.Error (a ValueError) for bad base64, ValueError for non-ASCII text.
        return False
    if len(given) != _DIGEST_SIZE:
        return False
    return hmac.compare_digest(given, expected)
