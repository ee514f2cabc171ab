"""The client floor: the trio shell around the pure core.

``session`` is one websocket connection (auth, subscriptions, pacing, reader), ``connection`` keeps
one alive and reports to the manager, ``manager`` is the public API, ``killswitch`` the account-wide
cancel, ``events``/``results`` what callers receive. May import ``protocol``, ``core``, ``journal``,
``errors``, ``logs`` and ``wsfix``; never the app or the simulator.
"""
