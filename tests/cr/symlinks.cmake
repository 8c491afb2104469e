# A symbolic link itself held open with O_PATH | O_NOFOLLOW (regfile.c):
# the fd comes back on the link; one removed while open is refused.
cr_program(symlinks)
cr_case(cr_symlink_opath symlinks 60 -- opath)
cr_case(bad_dump_symlink_removed symlinks 60 --expect-dump-fail --expect-msg %p
	--expect-msg 42 --expect-msg "symbolic link" -- removed)
