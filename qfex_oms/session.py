"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.session`` (see CHANGELOG)."""

import sys

from qfex_oms.client import session as _module

sys.modules[__name__] = _module
