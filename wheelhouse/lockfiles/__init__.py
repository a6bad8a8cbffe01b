"""Lockfiles: PEP 751 ``pylock.toml`` and ``uv.lock`` in (``read`` picks the reader: ``pylock``,
``uvlock``; both give the values of ``model``), and lockfiles of what the store holds out
(``write``).
"""
