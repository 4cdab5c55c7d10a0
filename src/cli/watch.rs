//! `galley watch`: run a recipe again whenever the files it depends on change, or whenever a
//! branch of a git remote gets a new commit. One run at a time: a change during a run either
//! cancels it cleanly and starts over (`--on-busy restart`) or queues the next run (`queue`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use rhai::{Dynamic, Map};
use tokio_util::sync::CancellationToken;

use super::run::{execute, interrupt_on_ctrl_c, Ended};
use super::{print_report, WatchArgs, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
use crate::duration::parse_duration;
use crate::error::Code;
use crate::exec::{Masker, OutputMode, Printer};
use crate::report::Report;
use crate::watch::filter::Filter;
use crate::watch::git::Poller;

/// What the loop hears about.
enum Event {
    Changed(Vec<PathBuf>),
    Finished(Ended, Duration),
    /// Ctrl-C.
    Stop,
}

/// What happens when a change arrives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnBusy {
    /// Cancel the run (its cleanup runs) and start a new one.
    Restart,
    /// Start the next run when the current one ends.
    Queue,
}

fn usage(args: &WatchArgs, message: String, help: &str) -> i32 {
    print_report(
        &Report::plain(Code::Usage, message, help),
        args.run.output.mode(),
        &Masker::default(),
    );
    EXIT_USAGE
}

/// The printer for the watcher's own lines. In `--output github` they are plain text: each run
/// has its own GitHub state (groups, fences), which the watcher's lines must not interleave.
fn watch_printer(args: &WatchArgs) -> Printer {
    let mode = match args.run.output.mode() {
        OutputMode::Github => OutputMode::Plain,
        mode => mode,
    };
    Printer::new(mode, Masker::default())
}

fn clock() -> String {
    crate::primitives::deploy::journal::now().0[11..19].to_string()
}

/// Whether an event changed a file (not just read it or its access time).
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{MetadataKind, ModifyKind};
    use notify::EventKind;
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Modify(_) => true,
        _ => false,
    }
}

/// Starts one run on a thread of its own; its end arrives as `Event::Finished`.
fn start(
    args: &WatchArgs,
    runtime: &tokio::runtime::Handle,
    cancel: CancellationToken,
    extra: Map,
    written: Option<Arc<Mutex<Vec<String>>>>,
    tx: mpsc::Sender<Event>,
) {
    if args.clear {
        print!("\x1b[2J\x1b[H");
    }
    let run_args = args.run.clone();
    let runtime = runtime.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let declared = Arc::new(Mutex::new(Vec::new()));
        let ended = execute(&run_args, &runtime, cancel, extra, Some(declared), written);
        let _ = tx.send(Event::Finished(ended, started.elapsed()));
    });
}

fn result_word(code: i32) -> &'static str {
    match code {
        EXIT_OK => "ok",
        EXIT_INTERRUPTED => "cancelled",
        EXIT_USAGE => "did not start (see the report above)",
        _ => "failed",
    }
}

pub fn watch(args: WatchArgs) -> i32 {
    let debounce = match parse_duration(&args.debounce) {
        Some(d) => d,
        None => {
            return usage(
                &args,
                format!("--debounce {:?} is not a duration", args.debounce),
                "write it like 200ms or 1s",
            )
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&args, format!("cannot start: {e}"), ""),
    };
    let stop = CancellationToken::new();
    interrupt_on_ctrl_c(&runtime, stop.clone());
    let code = match &args.git {
        Some(remote) => watch_git(&args, remote, &runtime, &stop),
        None => watch_files(&args, debounce, &runtime, &stop),
    };
    runtime.shutdown_background();
    code
}

/// A path with `.` and `..` resolved without touching the disk (so `proj/../shared` is
/// `shared`, not a folder inside `proj`).
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What to watch: folders (recursively) and single files.
#[derive(Default, PartialEq)]
struct Watches {
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
}

/// The folder a `--paths` glob starts in: its leading components without glob characters.
fn glob_base(pattern: &str) -> PathBuf {
    let literal: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| {
            !c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        })
        .collect();
    if literal.as_os_str().is_empty() {
        return normalize(Path::new("."));
    }
    normalize(&literal)
}

/// The folders of `--paths` globs outside the recipe's folder, which must exist to be watched.
fn path_dirs(recipe: &Path, paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let home = normalize(recipe)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for pattern in paths {
        let mut base = glob_base(pattern);
        if base.starts_with(&home) {
            continue;
        }
        // A pattern without glob characters names a file: watch the file's folder.
        if base == normalize(Path::new(pattern)) && !base.is_dir() {
            if let Some(parent) = base.parent() {
                base = parent.to_path_buf();
            }
        }
        if !base.is_dir() {
            return Err(format!(
                "--paths {pattern:?} is outside the watched folder {} and its folder {} does not exist",
                home.display(),
                base.display()
            ));
        }
        dirs.push(base);
    }
    Ok(dirs)
}

/// The recipe's folder, the folders of `--paths` and the folders the recipe declared,
/// recursively; the files it declared and its modules, one by one.
fn watches(recipe: &Path, paths: &[PathBuf], declared: &[String], sources: &[String]) -> Watches {
    let mut w = Watches::default();
    if let Some(dir) = normalize(recipe).parent() {
        w.dirs.insert(dir.to_path_buf());
    }
    w.dirs.extend(paths.iter().cloned());
    for path in declared.iter().chain(sources) {
        let path = normalize(Path::new(path));
        if path.is_dir() {
            w.dirs.insert(path);
        } else {
            w.files.insert(path);
        }
    }
    // A folder inside another watched folder adds nothing.
    let dirs: Vec<PathBuf> = w.dirs.iter().cloned().collect();
    w.dirs
        .retain(|d| !dirs.iter().any(|other| other != d && d.starts_with(other)));
    w
}

fn watch_files(
    args: &WatchArgs,
    debounce: Duration,
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
) -> i32 {
    let printer = watch_printer(args);
    let (tx, rx) = mpsc::channel::<Event>();
    let changes = tx.clone();
    // inotify through notify, with the burst collected below (a quiet period of `debounce`):
    // nothing wakes up while nothing changes.
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                // Reads (the run itself opens the recipe and its files) are not changes.
                if is_change(&event.kind) && !event.paths.is_empty() {
                    let _ = changes.send(Event::Changed(event.paths));
                }
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                return usage(
                    args,
                    format!("cannot watch files: {e}"),
                    "inotify limits? see `sysctl fs.inotify`",
                )
            }
        };
    {
        let tx = tx.clone();
        let stop = stop.clone();
        runtime.spawn(async move {
            stop.cancelled().await;
            let _ = tx.send(Event::Stop);
        });
    }
    let recipe = std::path::absolute(&args.run.file).unwrap_or_else(|_| args.run.file.clone());
    let path_dirs = match path_dirs(&recipe, &args.paths) {
        Ok(dirs) => dirs,
        Err(e) => {
            return usage(
                args,
                e,
                "create the folder, or write the glob relative to the recipe's folder",
            )
        }
    };
    let written: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = crate::primitives::deploy::journal::state_dir();
    let state = normalize(&state);
    let mut watched: BTreeSet<(PathBuf, bool)> = BTreeSet::new();
    let mut shown: Vec<String> = Vec::new();
    // A change to the project's galley.toml or galley.lock reloads the libraries too.
    let project = crate::libs::project_files(recipe.parent().unwrap_or(Path::new(".")));
    let mut sources: Vec<String> = vec![recipe.to_string_lossy().into_owned()];
    sources.extend(project.iter().cloned());
    let mut declared: Vec<String> = Vec::new();
    // Watches what the last run showed it depends on; rebuilds the rules.
    let mut rewatch = |declared: &[String],
                       sources: &[String],
                       watched: &mut BTreeSet<(PathBuf, bool)>,
                       shown: &mut Vec<String>|
     -> Result<Filter, String> {
        let wanted = watches(&recipe, &path_dirs, declared, sources);
        let mut targets: BTreeSet<(PathBuf, bool)> =
            wanted.dirs.iter().map(|d| (d.clone(), true)).collect();
        for file in &wanted.files {
            // Editors save by writing a new file and renaming it: watch the file's folder
            // (alone, not recursively) and let the filter keep only the file.
            if let Some(dir) = file.parent() {
                if !wanted.dirs.iter().any(|d| file.starts_with(d)) {
                    targets.insert((dir.to_path_buf(), false));
                }
            }
        }
        for (path, recursive) in targets.difference(&watched.clone()) {
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            notify::Watcher::watch(&mut watcher, path, mode)
                .map_err(|e| format!("cannot watch {}: {e}", path.display()))?;
            watched.insert((path.clone(), *recursive));
        }
        *shown = wanted
            .dirs
            .iter()
            .chain(wanted.files.iter())
            .map(|p| p.display().to_string())
            .collect();
        Filter::new(
            &wanted.dirs.iter().cloned().collect::<Vec<_>>(),
            &args.paths,
            &args.ignore,
            wanted.files.into_iter().collect(),
            written.clone(),
            state.clone(),
        )
    };
    let mut filter = match rewatch(&declared, &sources, &mut watched, &mut shown) {
        Ok(f) => f,
        Err(e) => return usage(args, e, "check --paths and --ignore"),
    };

    let mut current: Option<CancellationToken> = None;
    let mut queued = false;
    let launch = |current: &mut Option<CancellationToken>| {
        let token = stop.child_token();
        start(
            args,
            runtime.handle(),
            token.clone(),
            Map::new(),
            Some(written.clone()),
            tx.clone(),
        );
        *current = Some(token);
    };
    launch(&mut current);
    let mut batch: Vec<PathBuf> = Vec::new();
    let mut quiet_until: Option<Instant> = None;
    let mut stopping = false;
    loop {
        // Idle: block. Collecting a burst: wait until it has been quiet for `debounce`.
        let event = match quiet_until {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => Some(event),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(event) => Some(event),
                Err(_) => break,
            },
        };
        match event {
            Some(Event::Stop) => {
                stopping = true;
                match &current {
                    Some(token) => token.cancel(),
                    None => break,
                }
            }
            Some(Event::Changed(paths)) => {
                let before = batch.len();
                batch.extend(paths.into_iter().filter(|p| filter.wants(p)));
                if batch.len() > before {
                    quiet_until = Some(Instant::now() + debounce);
                }
            }
            None => {
                quiet_until = None;
                let mut relevant = std::mem::take(&mut batch);
                relevant.sort();
                relevant.dedup();
                let shown: Vec<String> = relevant
                    .iter()
                    .take(5)
                    .map(|p| p.display().to_string())
                    .collect();
                let more = relevant.len().saturating_sub(5);
                printer.watch(&format!(
                    "changed: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                ));
                match (&current, args.on_busy) {
                    (None, _) => launch(&mut current),
                    (Some(token), OnBusy::Restart) => {
                        printer.watch("cancelling the running run to start over");
                        token.cancel();
                        queued = true;
                    }
                    (Some(_), OnBusy::Queue) => {
                        if !queued {
                            printer.watch("a run is in progress: the next one starts when it ends");
                        }
                        queued = true;
                    }
                }
            }
            Some(Event::Finished(ended, took)) => {
                current = None;
                sources = ended.sources.clone();
                if sources.is_empty() {
                    sources.push(recipe.to_string_lossy().into_owned());
                }
                sources.extend(project.iter().cloned());
                declared = ended.watch.clone();
                match rewatch(&declared, &sources, &mut watched, &mut shown) {
                    Ok(f) => filter = f,
                    Err(e) => printer.warn(&e),
                }
                printer.watch(&format!("last run: {} in {:.2}s at {}; watching {}; waiting for changes (Ctrl-C to stop)",
                    result_word(ended.code),
                    took.as_secs_f64(),
                    clock(),
                    shown.join(", ")
                ));
                if stopping {
                    break;
                }
                if queued {
                    queued = false;
                    launch(&mut current);
                }
            }
        }
    }
    EXIT_INTERRUPTED
}

fn watch_git(
    args: &WatchArgs,
    remote: &str,
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
) -> i32 {
    let printer = watch_printer(args);
    let interval = match parse_duration(&args.interval) {
        Some(d) => d,
        None => {
            return usage(
                args,
                format!("--interval {:?} is not a duration", args.interval),
                "write it like 30s or 5m (at most 365 days)",
            )
        }
    };
    let state = crate::primitives::deploy::journal::state_dir();
    let mut poller = match Poller::new(remote, &args.branch, &args.paths, state) {
        Ok(p) => p,
        Err(e) => return usage(args, e, "check --git, --branch and --paths"),
    };
    printer.watch(&format!(
        "polling {remote} every {}s for new commits on `{}`{}",
        interval.as_secs_f64(),
        args.branch,
        if args.paths.is_empty() {
            String::new()
        } else {
            format!(" that change {}", args.paths.join(", "))
        }
    ));
    let mut first = true;
    while !stop.is_cancelled() {
        match poller.poll(first) {
            Err(e) => printer.warn(&format!("[watch] {e}")),
            Ok(None) => {}
            Ok(Some(push)) => {
                printer.watch(&format!(
                    "{} is now {} ({} path{} changed): deploying",
                    push.branch,
                    &push.sha[..push.sha.len().min(12)],
                    push.changed.len(),
                    if push.changed.len() == 1 { "" } else { "s" }
                ));
                let mut extra = Map::new();
                extra.insert("branch".into(), push.branch.clone().into());
                extra.insert("sha".into(), push.sha.clone().into());
                extra.insert(
                    "changed".into(),
                    Dynamic::from_array(push.changed.iter().cloned().map(Dynamic::from).collect()),
                );
                let (tx, rx) = mpsc::channel();
                start(args, runtime.handle(), stop.child_token(), extra, None, tx);
                if let Ok(Event::Finished(ended, took)) = rx.recv() {
                    let word = if ended.code == EXIT_OK {
                        "ok"
                    } else {
                        "failed"
                    };
                    // Recorded either way: a failed commit waits for a newer one, not a retry.
                    if let Err(e) = poller.record(&push.branch, &push.sha, word) {
                        printer.warn(&format!("cannot save the watcher's state: {e}"));
                    }
                    printer.watch(&format!(
                        "deploy of {} {}: {} in {:.2}s at {}",
                        push.branch,
                        &push.sha[..push.sha.len().min(12)],
                        result_word(ended.code),
                        took.as_secs_f64(),
                        clock()
                    ));
                }
                // Look again at once: another branch may be waiting.
                first = false;
                continue;
            }
        }
        first = false;
        let wait = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                _ = stop.cancelled() => true,
            }
        });
        if wait {
            break;
        }
    }
    EXIT_INTERRUPTED
}
