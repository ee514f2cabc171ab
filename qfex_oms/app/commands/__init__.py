"""The ``qfex-oms`` subcommands, one module per group; ``qfex_oms.app.cli`` assembles them."""
