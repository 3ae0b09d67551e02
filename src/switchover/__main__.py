from switchover.cli.main import main

main()
