# Engine core cases added by the lead (see tests/cr/CMakeLists.txt).
cr_program(poll)
cr_case(cr_poll poll 60)
