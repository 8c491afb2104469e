# File leases (libckpt/locks.c): read and write leases, and leases being
# broken, on open files two processes share.
cr_program(lease)
cr_case(cr_lease lease 60)
cr_case(cr_lease_pidns lease 60 --restore-opt --pidns --restore-opt always)
# Leases of two opens of one file, both being broken: refused by name.
cr_case(bad_dump_lease_two_breaking lease 60 --expect-dump-fail --expect-msg %p --expect-msg 41
	--expect-msg "holds another lease" -- two-breaking)
