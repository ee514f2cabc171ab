"""Deprecated path, kept for one release: the module is now ``qfex_oms.app.runner`` (see CHANGELOG)."""

import sys

from qfex_oms.app import runner as _module

sys.modules[__name__] = _module
