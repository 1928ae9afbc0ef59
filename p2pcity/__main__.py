from p2pcity.cli import main

main()
