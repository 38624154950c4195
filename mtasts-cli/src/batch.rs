//! What `mtasts lookup` and `mtasts check` share for many domains: where the domains come
//! from (arguments, a file or standard input), how many run at once, and the progress bar.
//! The batch itself is the core's (`Resolver::resolve_many`, `Resolver::check_many`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{EXIT_FAILURE, EXIT_USAGE};

/// The domains of a command, and how to run them.
#[derive(Args, Debug)]
pub struct Domains {
    /// Domains (ASCII or internationalised).
    #[arg(value_name = "DOMAIN", required_unless_present = "from_file")]
    pub domains: Vec<String>,
    /// Also read domains from FILE, one per line (`-`: standard input); blank lines and
    /// lines starting with `#` are skipped.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Work on at most N domains at once (1 to 256).
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
}

/// How a batch prints its results: a table (the default), one JSON value at the end, or one
/// JSON object per line as the results come.
#[derive(Args, Debug)]
pub struct Format {
    /// Print JSON instead of a table (docs/json.md): an array with an object per domain
    /// (`check` of a single domain: that one object).
    #[arg(long, conflicts_with = "json_lines")]
    pub json: bool,
    /// Print one JSON object per line, each as soon as it and every domain before it is
    /// known: for long lists (flat memory).
    #[arg(long)]
    pub json_lines: bool,
}

/// A failure to read the list of domains, kept until the batch has ended.
pub type ReadError = Arc<Mutex<Option<String>>>;

/// How writing a batch's output goes: the first failure stops the batch and is kept.
#[derive(Default)]
pub struct Sink {
    failed: Option<io::Error>,
}

impl Sink {
    /// Keeps going after a successful write; stops the batch after a failed one.
    pub fn record(&mut self, written: io::Result<()>) -> ControlFlow<()> {
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failed = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// After the batch: a read error of the list makes `code` a usage error; a write failure
    /// is reported (a closed pipe, `mtasts ... | head`, is not one); `rest` prints what is
    /// printed at the end when nothing failed. Returns the exit status.
    pub fn finish(self, read_error: &ReadError, mut code: u8, rest: impl FnOnce() -> bool) -> u8 {
        if let Some(e) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("mtasts: {e}");
            code = EXIT_USAGE;
        }
        let written = match self.failed {
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
            Some(e) => {
                eprintln!("mtasts: writing the output failed: {e}");
                false
            }
            None => rest(),
        };
        if written {
            code
        } else {
            code.max(EXIT_FAILURE)
        }
    }
}

impl Domains {
    /// The domains in order: the arguments, then the file's lines, read as they are needed.
    /// A read error ends the list and is left in the returned slot.
    pub fn iter(&self) -> io::Result<(impl Iterator<Item = String> + Send + use<>, ReadError)> {
        let error: ReadError = Arc::default();
        let file: Option<Box<dyn Read + Send>> = match self.from_file.as_deref() {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(Box::new(io::stdin())),
            Some(p) => Some(Box::new(File::open(p).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", p.display()))
            })?)),
        };
        let lines = file.map(|f| Lines {
            reader: BufReader::new(f),
            error: Arc::clone(&error),
            name: self
                .from_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        });
        Ok((
            self.domains
                .clone()
                .into_iter()
                .chain(lines.into_iter().flatten()),
            error,
        ))
    }

    /// How many domains there are, when known without reading standard input: the
    /// arguments and a regular file's domain lines (the file is read once more to count).
    pub fn count(&self) -> Option<u64> {
        let from_file = match self.from_file.as_deref() {
            None => 0,
            Some(p) if p.as_os_str() == "-" => return None,
            Some(p) => {
                let reader = BufReader::new(File::open(p).ok()?);
                reader
                    .split(b'\n')
                    .map_while(io::Result::ok)
                    .filter(|line| domain_of(line).is_some())
                    .count()
            }
        };
        u64::try_from(self.domains.len() + from_file).ok()
    }

    /// The progress bar of a batch: on standard error when it is a terminal and there is more
    /// than one domain, hidden otherwise.
    pub fn progress(&self) -> ProgressBar {
        // Counting reads the list once more: only when the bar will be drawn.
        if !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        match self.count() {
            Some(1) => ProgressBar::hidden(),
            total => progress_bar(total),
        }
    }
}

/// A progress bar with the rate and the time left on standard error (hidden when that is not
/// a terminal); a spinner when the total is not known.
pub fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} domains  {per_sec:.0}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {pos} domains  {per_sec:.0}  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The domain on one line of a list, if any.
fn domain_of(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    (!text.is_empty() && !text.starts_with('#')).then(|| text.to_string())
}

/// The domain lines of a file, read one at a time.
struct Lines {
    reader: BufReader<Box<dyn Read + Send>>,
    error: ReadError,
    name: String,
}

impl Iterator for Lines {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            line.clear();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                // Not UTF-8: the line is given as is (lossily), and the resolver reports it
                // as an invalid domain.
                Ok(_) => {
                    if let Some(domain) = domain_of(&line) {
                        return Some(domain);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                    *slot = Some(format!("reading {}: {e}", self.name));
                    return None;
                }
            }
        }
    }
}
