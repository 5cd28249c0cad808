/* A library that the MISSING_DEP test plugin links but the host cannot find. */
int inferd_testdep_answer(void);
int inferd_testdep_answer(void) { return 42; }
