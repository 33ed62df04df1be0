"""Who runs a script, what exactly runs, and whether it may: keepalived 2.2.7's rules,
in one place for `check-config` (validate_scripts.py) and for every process that runs
scripts (the VRRP child, the checker child, the parent's start-up/shut-down scripts).

keepalived (lib/notify.c) decides, for every script:

- its words: alloc_strvec_quoted_escaped() (fastha.config.lexer.split_quoted_escaped);
  a command line it cannot split (an unbalanced quote) is no script at all;
- its user: the script's own `user [group]`, else `script_user`, else the user
  `keepalived_script` if it exists, else us (root, after "Script user
  'keepalived_script' does not exist"); with `enable_script_security` and neither a
  script user nor `keepalived_script`, no default user: the script is dropped;
- check_script_secure(): a bare name is looked up on PATH; the path is resolved with
  realpath() as the script's user (its uid, its gid as the only group) and argv[0]
  replaced by the result (keeping the file name a symlink gave it when that names the
  same file); the file must be executable by that user; and when it runs as root, or
  is set-uid/gid root, every component of the path (`/`, each directory, the file or
  the final symlink, not followed) must be owned by root and not writable by a non-root
  group or by everyone (the sticky bit excuses a directory). An insecure script is
  disabled under `enable_script_security`, otherwise only logged.

`resolve()` returns the argv to execute, the uid/gid to run it as, keepalived's flags
and the lines keepalived logs on the way; a script that is not `runnable` must not run.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from enum import IntFlag

from fastha.config.lexer import split_quoted_escaped
from fastha.config.model import GlobalDefs
from fastha.config.validate import Host

DEFAULT_SCRIPT_USER = "keepalived_script"
_NO_DEFAULT_USER = f"Script user '{DEFAULT_SCRIPT_USER}' does not exist"


class Flags(IntFlag):
    """keepalived's SC_* script flags, and UNUSABLE for a script keepalived drops
    before checking it (no words, no such user, no default user)."""

    NONE = 0
    ISSCRIPT = 1
    EXECUTABLE = 2
    NOTFOUND = 4
    INSECURE = 8
    INHIBIT = 16
    SYSTEM = 32
    UNUSABLE = 64


def split_command(command: str) -> tuple[list[str], str | None]:
    """The words of a script command line, keepalived's quoting; (words so far, error)
    when it cannot be split (the script is then dropped)."""
    return split_quoted_escaped(command)


def program(command: str) -> str:
    """The file a script command line runs (its first word, keepalived's quoting)."""
    words, _ = split_command(command)
    return words[0] if words else ""


def executable(st: os.stat_result, uid: int, gid: int) -> bool:
    """keepalived's is_executable()."""
    mode = st.st_mode
    anyx = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    return bool(
        (uid == 0 and mode & anyx)
        or (uid == st.st_uid and mode & stat.S_IXUSR)
        or (
            uid != st.st_uid
            and (
                (gid == st.st_gid and mode & stat.S_IXGRP)
                or (gid != st.st_gid and mode & stat.S_IXOTH)
            )
        )
    )


def _searchable(st: os.stat_result, uid: int, gid: int) -> bool:
    """A directory the user may pass through (root may pass through any)."""
    if uid == 0:
        return True
    mode = st.st_mode
    if uid == st.st_uid:
        return bool(mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def realpath_as(host: Host, path: str, uid: int, gid: int) -> str:
    """realpath(3) as uid with gid as its only group (keepalived seteuid()s before it):
    symlinks followed, `.`/`..`/`//` removed; OSError (EACCES, ENOENT, ENOTDIR, ELOOP)
    where that user could not get through."""
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)
    todo = [p for p in path.split("/") if p]
    done = ""  # resolved so far ("" is /)
    links = 0
    while todo:
        name = todo.pop(0)
        if name == ".":
            continue
        parent = done or "/"
        st = host.lstat(parent)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent)
        if not _searchable(st, uid, gid):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), parent)
        if name == "..":
            done = done.rsplit("/", 1)[0]
            continue
        here = f"{done}/{name}"
        st = host.lstat(here)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), here)
            target = host.readlink(here)
            if target.startswith("/"):
                done = ""
            todo[:0] = [p for p in target.split("/") if p]
            continue
        done = here
    return done or "/"


def _check_security(host: Host, filename: str, security: bool, notes: list[str]) -> Flags:
    """keepalived's check_security(): `/`, each directory and the last component (not
    followed) of an absolute path."""
    prefixes = ["/"] + [filename[:i] for i in range(1, len(filename)) if filename[i] == "/"]
    prefixes.append(filename)
    for i, prefix in enumerate(prefixes):
        last = i == len(prefixes) - 1
        try:
            st = host.lstat(prefix)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.ELOOP, errno.ENOENT, errno.ENOTDIR):
                notes.append(f"check_script_secure could not find script '{filename}' - disabling")
            else:
                notes.append(
                    f"check_script_secure('{filename}') returned errno {exc.errno} - "
                    f"{os.strerror(exc.errno or 0)} - disabling"
                )
            return Flags.NOTFOUND
        mode = st.st_mode
        if (not last and not stat.S_ISDIR(mode)) or (
            last and not stat.S_ISREG(mode) and not stat.S_ISLNK(mode)
        ):
            notes.append(f"Wrong file type found in script path '{filename}'.")
            return Flags.INHIBIT
        if st.st_uid != 0 or (
            ((stat.S_ISDIR(mode) and not mode & stat.S_ISVTX) or stat.S_ISREG(mode))
            and ((st.st_gid != 0 and mode & stat.S_IWGRP) or mode & stat.S_IWOTH)
        ):
            notes.append(
                f"Unsafe permissions found for script '{filename}'"
                f"{' - disabling' if security else ''}."
            )
            return Flags.INSECURE | (Flags.INHIBIT if security else Flags.NONE)
    return Flags.NONE


def _find_path(host: Host, name: str, uid: int, gid: int) -> tuple[str | None, bool]:
    """keepalived's find_path(): (the first PATH entry holding a regular file this user
    may execute, whether one was found but refused)."""
    eacces = False
    for directory in host.path.split(":"):
        candidate = f"{directory}/{name}" if directory else name
        try:
            st = host.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and executable(st, uid, gid):
            return candidate, False
        eacces = True
    return None, eacces


def check_script_secure(
    host: Host, argv: list[str], uid: int, gid: int, security: bool, notes: list[str]
) -> Flags:
    """keepalived's check_script_secure(): argv[0] is replaced in place by the path that
    will be executed; the lines keepalived logs are appended to `notes`."""
    a0 = argv[0] if argv else ""
    if not a0:
        return Flags.NOTFOUND
    if a0[0] == "<" and a0[1:].lstrip(" \t")[:1] == "/":
        return Flags.SYSTEM  # "</file": a test that a file opens, nothing runs
    if "/" not in a0:
        found, eacces = _find_path(host, a0, uid, gid)
        if found is None:
            notes.append(
                f"Permissions failure for script {a0} in path - disabling"
                if eacces
                else f"Cannot find script {a0} in path - disabling"
            )
            return Flags.NOTFOUND
        notes.append(
            f"WARNING - script `{a0}` resolved by path search to `{found}`. "
            "Please specify full path."
        )
        a0 = found
    try:
        new_path = realpath_as(host, a0, uid, gid)
    except OSError as exc:
        notes.append(f"Script {a0} cannot be accessed - {os.strerror(exc.errno or 0)}")
        return Flags.NOTFOUND
    real_file_path: str | None = None
    if a0 != new_path:
        orig_file = a0.rsplit("/", 1)[1]
        new_dir, new_file = new_path.rsplit("/", 1)
        if orig_file != new_file:
            # Keep the name it was called by (some programs look at it) if that names
            # the same file in the resolved directory.
            real_file_path, new_path = new_path, f"{new_dir}/{orig_file}"
            try:
                real_st = host.stat(real_file_path)
            except OSError:
                real_st = None
            try:
                new_st = host.stat(new_path)
            except OSError:
                new_st = None
            if real_st is not None and (
                new_st is None or (real_st.st_dev, real_st.st_ino) != (new_st.st_dev, new_st.st_ino)
            ):
                new_path, real_file_path = real_file_path, None
        a0 = new_path
    argv[0] = a0
    try:
        st = host.stat(real_file_path or a0)
    except OSError:
        notes.append(f"Unable to access script `{a0}` - disabling")
        return Flags.NOTFOUND
    flags = Flags.ISSCRIPT
    protect = False
    if executable(st, uid, gid):
        flags |= Flags.EXECUTABLE
        mode = st.st_mode
        protect = bool(
            uid == 0
            or gid == 0
            or (st.st_uid == 0 and mode & stat.S_IXUSR and mode & stat.S_ISUID)
            or (st.st_gid == 0 and mode & stat.S_IXGRP and mode & stat.S_ISGID)
        )
    else:
        notes.append(
            f"WARNING - script '{a0}' is not executable for uid:gid {uid}:{gid} - disabling."
        )
    if not protect:
        return flags
    flags |= _check_security(host, a0, security, notes)
    if real_file_path is not None:
        flags |= _check_security(host, real_file_path, security, notes)
    return flags


@dataclass(frozen=True, slots=True)
class ScriptUser:
    """A resolved script user: names (None: as we are) and ids."""

    user: str | None
    group: str | None
    uid: int
    gid: int


def run_as(
    gdefs: GlobalDefs, user: str | None, group: str | None, host: Host, notes: list[str]
) -> ScriptUser | None:
    """Who runs a script with this `user [group]` (None: keepalived drops the script)."""
    if user is None:
        if gdefs.script_user is not None:
            user, group = gdefs.script_user.username, gdefs.script_user.groupname
        elif host.user_ids(DEFAULT_SCRIPT_USER) is not None:
            user, group = DEFAULT_SCRIPT_USER, None
        else:
            notes.append(_NO_DEFAULT_USER)
            if gdefs.enable_script_security:
                notes.append(f"Unable to set default user {DEFAULT_SCRIPT_USER} for script")
                return None
            return ScriptUser(None, None, os.geteuid(), os.getegid())
    ids = host.user_ids(user)
    if ids is None:
        notes.append(f"Script user '{user}' does not exist")
        return None
    uid, gid = ids
    if group is not None:
        g = host.group_id(group)
        if g is None:
            notes.append(f"Script group '{group}' does not exist")
            return None
        gid = g
    return ScriptUser(user, group, uid, gid)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A script as it will run: `argv` (argv[0] the resolved path), as uid:gid (with gid
    its only group, as keepalived sets them), keepalived's flags and log lines. Not
    `runnable`: disabled, never executed."""

    argv: tuple[str, ...]
    uid: int
    gid: int
    flags: Flags
    notes: tuple[str, ...]

    @property
    def runnable(self) -> bool:
        """keepalived keeps a script that is executable, or a `</file` test (SYSTEM),
        unless inhibited or not found."""
        f = self.flags
        return not f & (Flags.INHIBIT | Flags.NOTFOUND | Flags.UNUSABLE) and bool(
            f & (Flags.EXECUTABLE | Flags.SYSTEM)
        )


def resolve(
    command: str,
    user: str | None,
    group: str | None,
    gdefs: GlobalDefs,
    host: Host | None = None,
) -> Resolved:
    """One script command line as keepalived would run it (see the module's doc)."""
    host = host or Host(check_interfaces=False)
    notes: list[str] = []
    words, error = split_command(command)
    if error is not None or not words:
        notes.append(error or f"Unable to parse script '{command}' - ignoring")
        return Resolved(tuple(words), 0, 0, Flags.UNUSABLE, tuple(notes))
    who = run_as(gdefs, user, group, host, notes)
    if who is None:
        return Resolved(tuple(words), 0, 0, Flags.UNUSABLE, tuple(notes))
    flags = check_script_secure(host, words, who.uid, who.gid, gdefs.enable_script_security, notes)
    return Resolved(tuple(words), who.uid, who.gid, flags, tuple(notes))


log = logging.getLogger("fastha.scripts")
_said: set[str] = set()


def enabled(
    command: str,
    user: str | None,
    group: str | None,
    gdefs: GlobalDefs,
    what: str | None = None,
    host: Host | None = None,
) -> Resolved | None:
    """resolve(), with keepalived's log lines; None when keepalived would not run the
    script. `what` ("track script chk_x", "misc script /bin/x a") gets keepalived's
    "Disabling <what> due to insecure" / "since not found/accessible" line."""
    r = resolve(command, user, group, gdefs, host)
    bad = r.flags & (Flags.INSECURE | Flags.INHIBIT | Flags.NOTFOUND | Flags.UNUSABLE)
    for line in r.notes:
        if line == _NO_DEFAULT_USER:
            if line in _said:
                continue  # keepalived looks the default user up once
            _said.add(line)
        log.log(logging.WARNING if bad else logging.INFO, "%s", line)
    if what is not None:
        if r.flags & Flags.INHIBIT:
            log.warning("Disabling %s due to insecure", what)
        elif r.flags & Flags.NOTFOUND:
            log.warning("Disabling %s since not found/accessible", what)
    return r if r.runnable else None
