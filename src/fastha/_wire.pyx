# cython: language_level=3
"""fastha._wire: the compiled hot path (VRRP codec, checksums, frames, precise timer).

Placeholder until the wire issue lands; see fastha.wire for the public face.
"""
