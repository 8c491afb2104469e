# Placement (docs/placement.md; libckpt/cpu.c, placement.c): a set records
# the CPU it needs and the topology of its CPU bindings; a restore on a CPU
# that lacks a flag or an XSAVE component the set needs, or where a
# thread's binding is not allowed, is refused by name before anything is
# created (cr-run checks that nothing is left).  The sets are crafted
# after the dump by cpu-craft.sh (imgedit.py: what `ckptctl image
# decode/encode` lets anyone do).
set(CPU_CRAFT "exec:${CMAKE_CURRENT_SOURCE_DIR}/cpu-craft.sh")
# AVX/AVX-512 registers with values (cr-fpu): recorded, check-restore says
# yes, the registers come back
cr_case(cr_cpu_avx fpu 60 --after-dump "${CPU_CRAFT} check")
cr_case(bad_restore_cpu_flag counter 60 --after-dump "${CPU_CRAFT} flag"
	--expect-restore-fail --expect-msg "cpu: the set needs" --expect-msg "which this CPU lacks")
cr_case(bad_restore_cpu_xsave counter 60 --after-dump "${CPU_CRAFT} xsave"
	--expect-restore-fail --expect-msg "xsave component")
# a newer kernel's set: a warning (check-restore's, checked by the
# script), and the restore goes through
cr_case(cr_cpu_kernel_newer counter 60 --after-dump "${CPU_CRAFT} kernel")
# a process bound to one CPU; its set crafted to name a CPU this machine
# does not have: refused naming the thread, or mapped with --cpu-map=job
cr_program(bind)
cr_case(cr_cpu_bind bind 60 -- exact)
cr_case(bad_restore_cpu_bound bind 60 --after-dump "${CPU_CRAFT} cpu5" --expect-restore-fail
	--expect-msg "bound to CPUs" --expect-msg "--cpu-map=job" -- exact)
cr_case(cr_cpu_map_job bind 60 --after-dump "${CPU_CRAFT} cpu5" --restore-opt --cpu-map
	--restore-opt job -- one)
