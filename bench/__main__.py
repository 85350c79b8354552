from cetbench.cli import main

main()
