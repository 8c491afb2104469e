# restore --verify (libckpt/verify.c): every cr_case restores with it
# (cr-run); here a state restored wrong on purpose (the test-only fault
# switch CKPT_TEST_FAULT) must be named and the restore must fail,
# leaving no restored process.
cr_case(bad_restore_verify_umask counter 60 --expect-restore-fail --expect-msg "umask"
	--expect-msg "restore --verify")
set_tests_properties(bad_restore_verify_umask PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=umask)
# A restoring process that dies (the fault kills every one but the root
# before the first barrier) fails the restore at once, naming it, instead
# of the others waiting for it until the driver's 120 s timeout.
cr_case(bad_restore_child_crash cow 60 --expect-restore-fail
	--expect-msg "died while it was being restored")
set_tests_properties(bad_restore_child_crash PROPERTIES ENVIRONMENT CKPT_TEST_FAULT=child-crash)
