"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.killswitch`` (see CHANGELOG)."""

import sys

from qfex_oms.client import killswitch as _module

sys.modules[__name__] = _module
