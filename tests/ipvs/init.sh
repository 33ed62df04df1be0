#!/bin/sh
# PID 1 of the UML guest that runs fastha's IPVS tests (tests/ipvs/uml.py boots it).
# Stage 1 (root = host's / over hostfs, read-only): load overlay, build a writable
# snapshot (overlayfs, tmpfs upper) and chroot into it. Stage 2: mounts, modules, lo up,
# run the job's command, write rc/output into the job dir (hostfs, read-write), power off.
# The kernel passes unknown key=value boot arguments as environment: FASTHA_JOB is the
# host directory holding `cmd` (a shell script) and receiving `out` and `rc`; FASTHA_ROOT
# is the checkout (wherever CI cloned it) whose venv and tests run inside.
[ -n "$FASTHA_DEBUG" ] && set -x
# UML 6.1 on this host restores only the legacy FXSAVE part of the FPU state after a page
# fault (see seccomp_xstate.py): keep glibc off AVX/AVX-512 so nothing lives above xmm.
export GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF,-AVX2,-AVX,-AVX_Fast_Unaligned_Load,-FMA,-FMA4,-XSAVE,-XSAVEC
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PY=$FASTHA_ROOT/.venv/bin/python
HERE=$(dirname "$0")
off() { echo 1 > /proc/sys/kernel/sysrq; sync; echo o > /proc/sysrq-trigger; sleep 10; }

if [ "$1" != stage2 ]; then
    mount -t proc proc /proc
    # Scratch on /mnt, not /tmp: the checkout itself may live under /tmp.
    mount -t tmpfs -o size=256m tmpfs /mnt || { echo "init: tmpfs failed"; off; }
    mkdir /mnt/job && mount -t hostfs -o "$FASTHA_JOB" none /mnt/job || { echo "init: job"; off; }
    PYTHONHASHSEED=0 $PY -S "$HERE/kmod.py" --entropy /mnt/job/seed overlay \
        || { echo "init: entropy/overlay failed"; off; }
    umount /mnt/job
    mkdir -p /mnt/upper /mnt/work /mnt/root
    mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root \
        || { echo "init: overlay mount failed"; off; }
    umount /proc
    exec chroot /mnt/root /bin/sh "$0" stage2
fi

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null || mount -t tmpfs dev /dev
mkdir -p /dev/shm /dev/pts && mount -t tmpfs tmpfs /dev/shm
# /tmp stays the overlay's (writable, in memory): a tmpfs over it could hide the checkout.
mount -t tmpfs tmpfs /run
REL=$(uname -r)
mkdir -p /lib/modules/$REL && mount --bind /usr/lib/uml/modules/$REL /lib/modules/$REL
mkdir -p /job && mount -t hostfs -o "$FASTHA_JOB" none /job || { echo "init: job dir"; off; }
$PY -S "$HERE/kmod.py" ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr \
    ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf > /job/modules 2>&1
ip link set lo up
hostname fastha-uml
cd "$FASTHA_ROOT"
export HOME=/tmp PYTHONDONTWRITEBYTECODE=1 FASTHA_IN_UML=1
/bin/sh /job/cmd > /job/out 2>&1 < /dev/null
echo $? > /job/rc.tmp && mv /job/rc.tmp /job/rc
sync
umount /job
off
