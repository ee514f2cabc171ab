"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.connection`` (see CHANGELOG)."""

import sys

from qfex_oms.client import connection as _module

sys.modules[__name__] = _module
