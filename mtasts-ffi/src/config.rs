//! `mtasts_config`: the resolver configuration builder (the core's `Config`).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use mtasts_core::{CacheLocation, Config, LogLevel, TLSRPT_PREFIX, TlsRptSettings, TrustRoots};

use crate::boundary::{Tagged, arg_handle, arg_out, arg_str, ffi_boundary, free_handle, handle};
use crate::error::{Failure, mtasts_result};

/// A resolver configuration: name servers, trust roots, cache location, deadlines.
///
/// Made by `mtasts_config_new()`, changed by the `mtasts_config_set_*` functions, read by
/// `mtasts_resolver_new()` (which copies it), freed by `mtasts_config_free()`.
///
/// Thread-safety: a config may be shared between threads; the setters lock it.
pub struct mtasts_config(Tagged<Mutex<Settings>>);
handle!(mtasts_config, Mutex<Settings>, 0x4d53_0001);

/// What a configuration handle holds: the resolver's settings and TLS reporting's
/// (`tlsrpt.*`, for `mtasts_reporter_new()`), read from the same keys and files.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub(crate) config: Config,
    pub(crate) tlsrpt: TlsRptSettings,
}

fn with_settings(
    config: &Mutex<Settings>,
    change: impl FnOnce(&mut Settings) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut settings = config.lock().unwrap_or_else(|p| p.into_inner());
    change(&mut settings)
}

fn with_config(
    config: &Mutex<Settings>,
    change: impl FnOnce(&mut Config) -> Result<(), Failure>,
) -> Result<(), Failure> {
    with_settings(config, |s| change(&mut s.config))
}

/// Copies the configuration out (for `mtasts_resolver_new`).
pub(crate) fn snapshot(config: &Mutex<Settings>) -> Config {
    config
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .config
        .clone()
}

/// Copies the settings out (for `mtasts_reporter_new`).
pub(crate) fn snapshot_all(config: &Mutex<Settings>) -> Settings {
    config.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn invalid(message: String) -> Failure {
    Failure::new(mtasts_result::MTASTS_INVALID_PARAMETER, message)
}

/// Creates a configuration with the defaults: the system's name servers (`/etc/resolv.conf`),
/// the system trust store, an in-memory cache, a 30 s fetch deadline, a 10 s DNS deadline.
///
/// Ownership: on `MTASTS_OK`, `*config_out` is a new handle the caller owns and frees with
/// `mtasts_config_free()`. NULL: `config_out` must not be NULL (`MTASTS_NULL_PARAMETER`).
/// Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_new(config_out: *mut *mut mtasts_config) -> mtasts_result {
    ffi_boundary!({
        let out = arg_out(config_out, "config_out")?;
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write_handle(Mutex::new(Settings::default())) };
        Ok(())
    })
}

/// Frees a configuration made by `mtasts_config_new()`. NULL is a no-op.
///
/// Resolvers made from it are not affected (they hold a copy). The handle must not be in use
/// by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_free(config: *mut mtasts_config) {
    // SAFETY: NULL or a live handle (caller's promise).
    unsafe { free_handle(config) }
}

/// Adds a DNS server, `"ip:port"` (`"127.0.0.1:53"`, `"[::1]:53"`). Once one is added, only
/// the servers added are used, instead of `/etc/resolv.conf`.
///
/// NULL: `config` and `nameserver` must not be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8, not
/// `ip:port`) or `MTASTS_PANIC`. Thread-safe. RFC 8461 §3.1 (the TXT lookup) and R-FETCH-1
/// (the policy host is resolved through the same servers).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_add_nameserver(
    config: *mut mtasts_config,
    nameserver: *const std::ffi::c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        let text = unsafe { arg_str(nameserver, "nameserver") }?;
        let addr: SocketAddr = text
            .parse()
            .map_err(|e| invalid(format!("nameserver {text:?} is not ip:port: {e}")))?;
        with_config(config, |c| {
            c.nameservers.push(addr);
            Ok(())
        })
    })
}

/// Sets the trust roots for the policy host's certificate: `"system"` (the default: the
/// operating system's store), `"bundled"` (the Mozilla roots compiled into the library), or
/// the path of a PEM file with one or more `CERTIFICATE` blocks. The file is read by
/// `mtasts_resolver_new()`.
///
/// NULL: `config` and `roots` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8, empty) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §3.3 (R-FETCH-2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_trust_roots(
    config: *mut mtasts_config,
    roots: *const std::ffi::c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        let roots = unsafe { arg_str(roots, "roots") }?;
        if roots.is_empty() {
            return Err(invalid("roots is empty".into()));
        }
        with_config(config, |c| {
            c.trust_roots = TrustRoots::from_setting(roots);
            Ok(())
        })
    })
}

/// Sets where the policy cache lives, as one string: `"memory"` (the default: this process
/// only), a SQLite file path (`"/var/cache/mtasts/cache.db"`, the recommended setting for
/// MTAs: shared by every process of the host), `"redis://host:6379/0"` (shared by a fleet),
/// or `"FILE,redis://..."` (both).
///
/// The location is checked here and opened by `mtasts_resolver_new()`.
///
/// NULL: `config` and `location` must not be NULL. Returns `MTASTS_OK`,
/// `MTASTS_NULL_PARAMETER`, `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8),
/// `MTASTS_CONFIG` (not a cache location) or `MTASTS_PANIC`. Thread-safe. RFC 8461 §5.1
/// (R-CACHE-7).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_cache(
    config: *mut mtasts_config,
    location: *const std::ffi::c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        let location: CacheLocation = unsafe { arg_str(location, "location") }?.parse()?;
        with_config(config, |c| {
            c.cache = location;
            Ok(())
        })
    })
}

/// Sets the deadline of one policy fetch, in milliseconds: connection, TLS, headers and body
/// together (default 30000).
///
/// NULL: `config` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (0, or more than 600000) or
/// `MTASTS_PANIC`. Thread-safe. RFC 8461 §3.3 (R-FETCH-9).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_fetch_timeout_ms(
    config: *mut mtasts_config,
    timeout_ms: u64,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        if timeout_ms == 0 {
            return Err(invalid("the fetch timeout must be positive".into()));
        }
        with_config(config, |c| {
            checked(c, |c| c.fetch_timeout = Duration::from_millis(timeout_ms))
        })
    })
}

/// Sets the deadline of one DNS lookup, in milliseconds (default 10000).
///
/// NULL: `config` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (0, or more than 600000) or
/// `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_dns_timeout_ms(
    config: *mut mtasts_config,
    timeout_ms: u64,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        if timeout_ms == 0 {
            return Err(invalid("the DNS timeout must be positive".into()));
        }
        with_config(config, |c| {
            checked(c, |c| c.dns_timeout = Duration::from_millis(timeout_ms))
        })
    })
}

/// Sets a fixed interval, in seconds, between two checks of a domain's TXT record; 0 (the
/// default) uses the TXT record's TTL, clamped to [60 s, 3600 s].
///
/// NULL: `config` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (more than 3600) or `MTASTS_PANIC`.
/// Thread-safe. RFC 8461 §5.1 (R-CACHE-5).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_recheck_interval_s(
    config: *mut mtasts_config,
    interval_s: u64,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        with_config(config, |c| {
            checked(c, |c| {
                c.recheck_interval = (interval_s > 0).then(|| Duration::from_secs(interval_s));
            })
        })
    })
}

/// **For tests only**: fetches policies from this port instead of 443; 0 restores 443.
///
/// NULL: `config` must not be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set_policy_port(
    config: *mut mtasts_config,
    port: u16,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or a live pointer (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        with_config(config, |c| {
            c.policy_port = (port > 0).then_some(port);
            Ok(())
        })
    })
}

/// Applies one setting of the mtasts settings format (the core's, documented in the README
/// and `mtasts_core::config`): `key` is `cache`, `nameserver` (adds one), `trust_roots`,
/// `fetch_timeout`, `dns_timeout`, `recheck_interval` (seconds), `memory_entries`,
/// `log_level`, `policy_port` or a TLS reporting key (`tlsrpt.retention_days`, read by
/// `mtasts_reporter_new()`), and `value` its text, e.g. `("fetch_timeout", "10")`. On an
/// error the configuration is unchanged.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_CONFIG` (an
/// unknown key or a bad value; `mtasts_last_error()` names the key) or `MTASTS_PANIC`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_set(
    config: *mut mtasts_config,
    key: *const std::ffi::c_char,
    value: *const std::ffi::c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        let key = unsafe { arg_str(key, "key") }?;
        let value = unsafe { arg_str(value, "value") }?;
        with_settings(config, |s| {
            // The resolver's keys are checked by `Config::set` (which leaves `tlsrpt.*` to
            // `TlsRptSettings`), TLS reporting's by `TlsRptSettings::set`.
            let mut tlsrpt = s.tlsrpt.clone();
            if key.starts_with(TLSRPT_PREFIX) {
                tlsrpt.set(key, value)?;
            }
            s.config.set(key, value)?;
            s.tlsrpt = tlsrpt;
            Ok(())
        })
    })
}

/// Applies the settings file at `path` (one `key = value` per line, `#` comments; the keys of
/// `mtasts_config_set()`, the `tlsrpt.*` keys included). On an error the configuration is
/// unchanged.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE`, `MTASTS_INVALID_PARAMETER` (not UTF-8), `MTASTS_CONFIG` (the file
/// cannot be read, or a line is wrong: `mtasts_last_error()` names the file, the line and the
/// key) or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_load_file(
    config: *mut mtasts_config,
    path: *const std::ffi::c_char,
) -> mtasts_result {
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config.cast_const(), "config") }?;
        let path = unsafe { arg_str(path, "path") }?;
        with_settings(config, |s| {
            let mut tlsrpt = s.tlsrpt.clone();
            tlsrpt.load_file(path)?;
            s.config.load_file(path)?;
            s.tlsrpt = tlsrpt;
            Ok(())
        })
    })
}

/// The `log_level` setting (default `MTASTS_LOG_WARN`): how much a host should pass to its
/// log, e.g. as the level of `mtasts_set_log_callback()`.
///
/// NULL: no parameter may be NULL. Returns `MTASTS_OK`, `MTASTS_NULL_PARAMETER`,
/// `MTASTS_INVALID_HANDLE` or `MTASTS_PANIC`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mtasts_config_log_level(
    config: *const mtasts_config,
    level_out: *mut crate::logging::mtasts_log_level,
) -> mtasts_result {
    use crate::logging::mtasts_log_level as L;
    ffi_boundary!({
        // SAFETY: NULL or live pointers (caller's promise), checked here.
        let config = unsafe { arg_handle(config, "config") }?;
        let out = arg_out(level_out, "level_out")?;
        let level = match snapshot(config).log_level {
            LogLevel::Off => L::MTASTS_LOG_OFF,
            LogLevel::Error => L::MTASTS_LOG_ERROR,
            LogLevel::Warn => L::MTASTS_LOG_WARN,
            LogLevel::Info => L::MTASTS_LOG_INFO,
            _ => L::MTASTS_LOG_DEBUG,
        };
        // SAFETY: checked by `arg_out`; writable (caller's promise).
        unsafe { out.write(level) };
        Ok(())
    })
}

/// Applies `change` to `config` if the result passes the core's range checks
/// ([`Config::validate`](mtasts_core::Config::validate)); otherwise leaves it as it was.
fn checked(config: &mut Config, change: impl FnOnce(&mut Config)) -> Result<(), Failure> {
    let mut next = config.clone();
    change(&mut next);
    next.validate().map_err(|e| invalid(e.to_string()))?;
    *config = next;
    Ok(())
}
