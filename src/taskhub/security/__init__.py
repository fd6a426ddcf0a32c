"""Security primitives: password hashing, token encoding, signing. Nothing here knows HTTP."""
