"""Make UML 6.1 fall back from XSAVE to FXSAVE register transfer on AVX-512 hosts.

Debian's UML 6.1 moves a guest process's FPU state with PTRACE_{GET,SET}REGSET
NT_X86_XSTATE using its own ``struct _xstate`` (the pre-AVX-512 size). The host kernel
insists on its full XSAVE size for SETREGSET (arch/x86/kernel/fpu/regset.c
``xstateregs_set``: ``count != fpu_user_cfg.max_size`` -> EFAULT), so on an AVX-512 host
every guest process dies at its first context switch ("userspace - ptrace set fp regs
failed, errno = 14", "Attempted to kill init"). Fixed upstream in later UML kernels
(``host_fp_size``). UML probes once (``arch_init_registers``) whether GETREGSET works and
otherwise uses PTRACE_GETFPREGS/SETFPREGS; a seccomp filter that fails the XSTATE regset
requests with EIO makes it take that path.

Cost, found the hard way: that path restores only the legacy FXSAVE area (x87, MXCSR,
xmm0-15). After a guest page fault UML lets its stub's host signal handler run, which
resets the host FPU to its init state, so ymm/zmm upper halves, zmm16-31 and the AVX-512
mask registers are zeroed behind the guest's back; glibc's AVX2/EVEX string functions then
misbehave (Python spins or fails in getpath). init.sh therefore sets GLIBC_TUNABLES to
keep glibc on its SSE2 variants inside the guest.
"""

from __future__ import annotations

import ctypes
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EIO = 5
AUDIT_ARCH_X86_64 = 0xC000003E
NR_PTRACE = 101
PTRACE_GETREGSET, PTRACE_SETREGSET = 0x4204, 0x4205
NT_X86_XSTATE = 0x202

# classic BPF opcodes
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


PROGRAM = b"".join([
    _insn(LD_W_ABS, 0, 0, 4),                          # arch
    _insn(JEQ_K, 0, 7, AUDIT_ARCH_X86_64),
    _insn(LD_W_ABS, 0, 0, 0),                          # nr
    _insn(JEQ_K, 0, 5, NR_PTRACE),
    _insn(LD_W_ABS, 0, 0, 16),                         # args[0]: request
    _insn(JEQ_K, 1, 0, PTRACE_GETREGSET),
    _insn(JEQ_K, 0, 2, PTRACE_SETREGSET),
    _insn(LD_W_ABS, 0, 0, 32),                         # args[2]: regset type
    _insn(JEQ_K, 1, 0, NT_X86_XSTATE),
    _insn(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    _insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | EIO),
])  # fmt: skip


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install() -> None:
    """Install the filter in the calling process (use as ``preexec_fn``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prog = _SockFprog(len(PROGRAM) // 8, PROGRAM)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
