"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.events`` (see CHANGELOG)."""

import sys

from qfex_oms.client import events as _module

sys.modules[__name__] = _module
