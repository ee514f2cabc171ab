"""Deprecated path, kept for one release: the module is now ``qfex_oms.client.results`` (see CHANGELOG)."""

import sys

from qfex_oms.client import results as _module

sys.modules[__name__] = _module
