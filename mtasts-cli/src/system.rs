//! What `mtasts serve` and `mtasts tlsrpt collect` ask of the operating system: systemd's socket activation
//! (`LISTEN_FDS`) and readiness protocol (`NOTIFY_SOCKET`), the owner of a Unix socket, and
//! dropping root privileges. The only `unsafe` of the command is here, each use with the
//! reason it is sound.
#![allow(unsafe_code)]

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;

/// A listening socket handed over by systemd.
pub enum Inherited {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream listener.
    Unix(UnixListener),
    /// A Unix datagram socket (`ListenDatagram=` in the socket unit).
    UnixDatagram(UnixDatagram),
}

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;
/// More inherited sockets than this is a misconfiguration.
const MAX_LISTEN_FDS: RawFd = 64;

/// The sockets systemd passed to this process (sd_listen_fds(3)): none when `LISTEN_PID` is
/// not this process. Must run before any thread is started (it clears the variables, as
/// sd_listen_fds does with `unset_environment`, so children do not take the sockets as
/// theirs).
pub fn listen_fds() -> io::Result<Vec<Inherited>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    // SAFETY: the command is still single-threaded here (serve calls this before starting
    // any thread), so nothing reads the environment while it changes.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let count: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=MAX_LISTEN_FDS).contains(n))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "LISTEN_FDS: not a count"))?;
    let mut sockets = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + count {
        // SAFETY: `fd` is a plain integer checked by fcntl/getsockname below; no memory is
        // involved. F_SETFD with FD_CLOEXEC keeps it from children.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `addr` is a zeroed sockaddr_storage and `len` its size, as getsockname(2)
        // wants; it writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockname(fd, (&raw mut addr).cast::<libc::sockaddr>(), &raw mut len)
        };
        if rc != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "inherited file descriptor {fd} is not a socket: {}",
                    io::Error::last_os_error()
                ),
            ));
        }
        // SAFETY: systemd passed descriptors LISTEN_FDS_START.. to this process (LISTEN_PID is
        // ours) and nothing else in it owns them: each is taken over exactly once, here.
        let socket = match i32::from(addr.ss_family) {
            libc::AF_UNIX if socket_type(fd)? == libc::SOCK_DGRAM => {
                Inherited::UnixDatagram(unsafe { UnixDatagram::from_raw_fd(fd) })
            }
            libc::AF_UNIX => Inherited::Unix(unsafe { UnixListener::from_raw_fd(fd) }),
            libc::AF_INET | libc::AF_INET6 => {
                Inherited::Tcp(unsafe { TcpListener::from_raw_fd(fd) })
            }
            family => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("inherited socket {fd} has address family {family}"),
                ));
            }
        };
        sockets.push(socket);
    }
    Ok(sockets)
}

/// The type of the socket `fd` (`SOCK_STREAM`, `SOCK_DGRAM`, ...).
fn socket_type(fd: RawFd) -> io::Result<libc::c_int> {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `kind` is a c_int and `len` its size, as getsockopt(2) wants for SO_TYPE; it
    // writes at most `len` bytes. `fd` is a plain integer (an error if it is no socket).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut kind).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(kind)
}

/// Tells systemd (`Type=notify`) about the server's state: `READY=1`, `RELOADING=1`,
/// `STOPPING=1` (sd_notify(3)). Nothing happens outside systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let sent = match path.to_str().and_then(|p| p.strip_prefix('@')) {
        // An abstract socket (Linux): "@name".
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), Path::new(&path)),
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
}

/// A user and group as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Reads `USER[:GROUP]` (names from /etc/passwd and /etc/group, or numbers); without a group,
/// the user's own group.
pub fn lookup_ids(spec: &str) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = |file: &str, name: &str| -> Option<Vec<String>> {
        file.lines()
            .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
            .find(|fields| fields.first().map(String::as_str) == Some(name))
    };
    let (uid, own_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => {
            let fields = entry(&passwd, user).ok_or(format!("no user {user:?} in /etc/passwd"))?;
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
            (
                number(2).ok_or(format!("/etc/passwd: bad entry for {user:?}"))?,
                number(3),
            )
        }
    };
    let gid = match group {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
                entry(&groups, group)
                    .and_then(|fields| fields.get(2).and_then(|f| f.parse().ok()))
                    .ok_or(format!("no group {group:?} in /etc/group"))?
            }
        },
        None => own_gid.ok_or(format!("{spec}: give the group too (USER:GROUP)"))?,
    };
    Ok(Ids { uid, gid })
}

/// Makes `path` (a Unix socket just bound) belong to `ids`.
pub fn chown(path: &Path, ids: Ids) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(ids.uid), Some(ids.gid))
}

/// The number of threads of this process (from /proc).
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Gives up root for `ids` for good: supplementary groups, group, then user; checked
/// afterwards. Refuses when the process already has more than one thread (each thread
/// would keep its own credentials otherwise).
pub fn drop_privileges(ids: Ids) -> Result<(), String> {
    // SAFETY: getters without arguments.
    if unsafe { (libc::geteuid(), libc::getegid()) } == (ids.uid, ids.gid) {
        return Ok(()); // already that user
    }
    if threads() != Some(1) {
        return Err(
            "cannot change user once threads run; this is a bug in mtasts, please report it \
             (meanwhile, run it as that user, e.g. systemd's User=)"
                .into(),
        );
    }
    let gid = ids.gid as libc::gid_t;
    // SAFETY: plain system calls on integers; setgroups reads one gid_t from `&gid`, which
    // lives across the call.
    let failed = unsafe {
        libc::setgroups(1, &raw const gid) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(ids.uid as libc::uid_t) != 0
    };
    if failed {
        return Err(format!(
            "cannot change to uid {} gid {}: {}",
            ids.uid,
            ids.gid,
            io::Error::last_os_error()
        ));
    }
    // SAFETY: getters without arguments. setuid(0) must now fail if root was dropped.
    let (uid, egid, back) = unsafe { (libc::geteuid(), libc::getegid(), libc::setuid(0)) };
    if uid != ids.uid || egid != ids.gid || (ids.uid != 0 && back == 0) {
        return Err(format!(
            "still uid {uid} gid {egid} after dropping privileges"
        ));
    }
    Ok(())
}

/// Waits until `fd` is readable (a listener: a connection is waiting) or `limit` passes;
/// `true` when readable. What the accept loops sleep in, so a new connection is taken at
/// once while the loop still looks at the stop flag now and then.
pub fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, limit: std::time::Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one pollfd, valid for the call; `fd` is borrowed, so it stays open meanwhile.
    let ready = unsafe { libc::poll(&raw mut poll, 1, millis) };
    ready > 0
}
