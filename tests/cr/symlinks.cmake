# A symbolic link itself held open with O_PATH | O_NOFOLLOW (regfile.c):
# the fd comes back on the link; one removed while open is made again,
# opened and removed (ghost-node.c).
cr_program(symlinks)
cr_case(cr_symlink_opath symlinks 60 -- opath)
cr_case(cr_symlink_removed symlinks 60 -- removed)
