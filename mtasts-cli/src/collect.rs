//! `mtasts tlsrpt collect`: receives the datagrams Postfix 3.10 and later (linked with
//! sys4's libtlsrpt) send per delivery attempt, and records them into the report store
//! beside the policy cache (issue 15, item 3a). The work is the core's [`Collector`]; this
//! file reads the options, takes the socket (bound here, or handed over by systemd's socket
//! activation), and stops on SIGTERM or SIGINT.
//!
//! Exit status: 0 stopped by a signal, 1 the socket failed while running, 2 usage (bad
//! options or settings, a socket that cannot be bound, no shared cache).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use mtasts_core::{Collector, CollectorCounts, Reporter, TlsRptSettings};

use crate::system::{self, Inherited};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions};

/// Arguments of `mtasts tlsrpt collect`.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// The Unix datagram socket to listen on (default: `tlsrpt.collect_socket` of the
    /// settings file, else /run/mtasts/tlsrpt.sock). A socket left there is replaced;
    /// anything else at the path is refused. Ignored when systemd passes the socket.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The socket's file mode, octal (default: `tlsrpt.collect_socket_mode`, else 0660).
    #[arg(long, value_name = "MODE")]
    socket_mode: Option<String>,
}

/// The settings: the defaults, the settings file's `tlsrpt.*` keys, then the options.
fn settings(net: &NetOptions, args: &CollectArgs) -> Result<TlsRptSettings, String> {
    let mut settings = TlsRptSettings::default();
    if let Some(file) = crate::settings_file(net) {
        settings.load_file(&file).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.socket {
        let path = std::path::absolute(path).map_err(|e| format!("--socket: {e}"))?;
        settings
            .set("tlsrpt.collect_socket", &path.to_string_lossy())
            .map_err(|e| format!("--socket: {e}"))?;
    }
    if let Some(mode) = &args.socket_mode {
        settings
            .set("tlsrpt.collect_socket_mode", mode)
            .map_err(|e| format!("--socket-mode: {e}"))?;
    }
    if let Some(emit) = &settings.emit_socket {
        return Err(format!(
            "tlsrpt.emit_socket = {} sends sessions to another collector instead of storing \
             them; mtasts tlsrpt collect stores what it receives: unset it for collect",
            emit.display()
        ));
    }
    Ok(settings)
}

/// Runs `mtasts tlsrpt collect`; returns the exit status.
pub fn collect(net: &NetOptions, args: &CollectArgs) -> u8 {
    let prepared = settings(net, args).and_then(|settings| {
        let config = crate::config(net)?;
        let reporter = Reporter::open(&config, &settings).map_err(|e| e.to_string())?;
        Ok((settings, reporter))
    });
    let (settings, reporter) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    // A daemon says what it refuses and loses: warnings on unless -q silenced the log.
    if log::max_level() > log::LevelFilter::Off {
        log::set_max_level(log::max_level().max(log::LevelFilter::Info));
    }
    // Still one thread: take systemd's socket, or bind ours.
    let inherited = match system::listen_fds() {
        Ok(inherited) => inherited,
        Err(e) => {
            eprintln!("mtasts: systemd sockets: {e}");
            return EXIT_USAGE;
        }
    };
    let mut datagram = None;
    for socket in inherited {
        match socket {
            Inherited::UnixDatagram(s) if datagram.is_none() => datagram = Some(s),
            _ => {
                eprintln!(
                    "mtasts: systemd sockets: collect takes exactly one Unix datagram socket \
                     (ListenDatagram=)"
                );
                return EXIT_USAGE;
            }
        }
    }
    let store = reporter.store().location();
    let (collector, place) = match datagram {
        Some(socket) => (
            Collector::from_socket(socket, reporter),
            "the socket systemd passed".to_string(),
        ),
        None => (
            Collector::bind(
                &settings.collect_socket,
                settings.collect_socket_mode,
                reporter,
            ),
            settings.collect_socket.display().to_string(),
        ),
    };
    let collector = match collector {
        Ok(collector) => collector,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("mtasts: cannot handle signal {signal}: {e}");
            return EXIT_FAILURE;
        }
    }
    log::info!("tlsrpt collect: receiving datagrams on {place}, recording into {store}");
    system::notify("READY=1");
    let ran = collector.run(&stop);
    system::notify("STOPPING=1");
    log::info!("tlsrpt collect: stopped: {}", describe(&collector.counts()));
    match ran {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("mtasts: {e}");
            EXIT_FAILURE
        }
    }
}

/// The counts as one line: `received 9, recorded 8 (9 sessions), refused 1
/// (invalid-session 1), lost 0 sessions`.
fn describe(c: &CollectorCounts) -> String {
    let refused = if c.refused.is_empty() {
        String::new()
    } else {
        let by: Vec<String> = c.refused.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(" ({})", by.join(", "))
    };
    format!(
        "received {}, recorded {} ({} sessions), refused {}{refused}, lost {} sessions",
        c.received,
        c.recorded,
        c.sessions,
        c.refused_total(),
        c.sessions_lost
    )
}
