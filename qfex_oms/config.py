"""Deprecated path, kept for one release: the module is now ``qfex_oms.app.config`` (see CHANGELOG)."""

import sys

from qfex_oms.app import config as _module

sys.modules[__name__] = _module
