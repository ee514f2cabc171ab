"""Deprecated path, kept for one release: the module is now ``qfex_oms.journal.view`` (see CHANGELOG)."""

import sys

from qfex_oms.journal import view as _module

sys.modules[__name__] = _module
