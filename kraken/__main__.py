from kraken.cli import main

main()
