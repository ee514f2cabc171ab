"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.manager`` (see CHANGELOG)."""

import sys

from qfex_oms.client import manager as _module

sys.modules[__name__] = _module
