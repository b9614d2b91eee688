package pgserver

import "syscall"

// setParentDeathSignal asks the kernel to fast-shutdown PostgreSQL when the
// process that started it dies, however it dies (a killed test binary, a
// crashed server), so no private server outlives its owner. The signal is
// tied to the starting OS thread; Go keeps threads alive unless a goroutine
// exits while locked to one, which nothing here does.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGINT }
