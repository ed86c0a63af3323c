//! End-to-end tests of lawmesh live in `tests/`; this library holds nothing. The binary
//! `lawmesh-under-test` is the real `lawmesh` command, built inside this package so the tests
//! can run it as a child process (and kill it with SIGKILL).
