# Linux-only declarations that Cython's bundled libc/posix .pxd files lack.

from posix.time cimport itimerspec


cdef extern from "<sys/timerfd.h>" nogil:
    enum:
        TFD_NONBLOCK
        TFD_CLOEXEC
        TFD_TIMER_ABSTIME

    int timerfd_create(int clockid, int flags)
    int timerfd_settime(int fd, int flags, const itimerspec *new_value, itimerspec *old_value)
    int timerfd_gettime(int fd, itimerspec *curr_value)


cdef extern from "<sys/prctl.h>" nogil:
    enum:
        PR_SET_TIMERSLACK
        PR_GET_TIMERSLACK

    int prctl(int option, ...)
