from qfex_oms.app.cli import main

main()
