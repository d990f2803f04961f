from inferlab.cli import main

main()
