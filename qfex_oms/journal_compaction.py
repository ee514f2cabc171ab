"""Deprecated path, kept for one release: now ``qfex_oms.journal.compaction`` (see CHANGELOG)."""

import sys

from qfex_oms.journal import compaction as _module

sys.modules[__name__] = _module
