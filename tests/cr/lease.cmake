# File leases (libckpt/locks.c): read and write leases, and leases being
# broken, on open files two processes share.
cr_program(lease)
cr_case(cr_lease lease 60)
cr_case(cr_lease_pidns lease 60 --restore-opt --pidns --restore-opt always)
