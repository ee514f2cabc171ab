from qfex_oms.cli import main

main()
