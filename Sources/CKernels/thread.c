// Per-thread scheduling priority (Linux threads have their own nice value; Swift's Glibc has no gettid).
#define _GNU_SOURCE
#include "ckernels.h"

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int sy_set_thread_niceness(int niceness) {
#if defined(__linux__)
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
#else
    (void)niceness;
    return -1;
#endif
}
