# A console of the machine, no process's controlling terminal (zdtm
# console): reopened by path, the same device again (regfile.c), else
# the restore is refused naming both devices.
cr_program(sysdev)
cr_case(cr_sysdev_console sysdev 60 -- console)
cr_case(bad_restore_sysdev_swapped sysdev 60 --helper $<TARGET_FILE:cr-sysdev> --helper-arg swap
	--helper-after-dump --expect-restore-fail --expect-msg "is device 1:3 now, 5:1 at the dump"
	-- console)
