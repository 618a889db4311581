from decl.cli import main

main()
