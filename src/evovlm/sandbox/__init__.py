"""The rendering sandbox behind :mod:`evovlm.render` (statuses documented there)."""
