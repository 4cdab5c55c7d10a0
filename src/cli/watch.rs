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

use super::run::{execute, interrupt_on_ctrl_c, secrets_file, Ended, Shared};
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

fn usage(args: &WatchArgs, masker: &Masker, message: String, help: &str) -> i32 {
    print_report(
        &Report::plain(Code::Usage, message, help),
        args.run.output.mode(),
        masker,
    );
    EXIT_USAGE
}

/// The printer for the watcher's own lines, masking what every run masks. In `--output github`
/// they are plain text: each run has its own GitHub state (groups, fences), which the watcher's
/// lines must not interleave.
fn watch_printer(args: &WatchArgs, masker: &Masker) -> Printer {
    let mode = match args.run.output.mode() {
        OutputMode::Github => OutputMode::Plain,
        mode => mode,
    };
    Printer::new(mode, masker.clone())
}

fn clock() -> String {
    crate::primitives::deploy::journal::now().0[11..19].to_string()
}

/// Whether an event changed a file (not just read it or its access time).
fn is_change(kind: notify::EventKind) -> bool {
    use notify::event::{MetadataKind, ModifyKind};
    use notify::EventKind;
    match kind {
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) => true,
        _ => false,
    }
}

/// Starts one run on a thread of its own; its end arrives as `Event::Finished`.
fn start(
    args: &WatchArgs,
    printer: &Printer,
    runtime: &tokio::runtime::Handle,
    cancel: CancellationToken,
    shared: Shared,
    tx: mpsc::Sender<Event>,
) {
    if args.clear {
        printer.clear();
    }
    let run_args = args.run.clone();
    let runtime = runtime.clone();
    let shared = Shared {
        watch: Some(Arc::default()),
        ..shared
    };
    std::thread::spawn(move || {
        let started = Instant::now();
        let ended = execute(&run_args, &runtime, cancel, shared);
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
    let masker = Masker::default();
    // The secrets file's values are masked in the watcher's own lines from the first (a git
    // remote's URL may hold a token); a file that cannot be read is reported by each run.
    let _ = secrets_file(&args.run, &masker);
    let Some(debounce) = parse_duration(&args.debounce) else {
        return usage(
            &args,
            &masker,
            format!("--debounce {:?} is not a duration", args.debounce),
            "write it like 200ms or 1s",
        );
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&args, &masker, format!("cannot start: {e}"), ""),
    };
    let stop = CancellationToken::new();
    interrupt_on_ctrl_c(&runtime, stop.clone());
    let code = match &args.git {
        Some(remote) => watch_git(&args, &masker, remote, &runtime, &stop),
        None => watch_files(&args, &masker, debounce, &runtime, &stop),
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

/// Watches the recipe's files and runs it on every burst of changes, until Ctrl-C.
fn watch_files(
    args: &WatchArgs,
    masker: &Masker,
    debounce: Duration,
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
) -> i32 {
    let printer = watch_printer(args, masker);
    let (tx, rx) = mpsc::channel::<Event>();
    let watcher = match file_watcher(tx.clone()) {
        Ok(w) => w,
        Err(e) => {
            return usage(
                args,
                masker,
                format!("cannot watch files: {e}"),
                "inotify limits? see `sysctl fs.inotify`",
            )
        }
    };
    forward_stop(runtime, stop, tx.clone());
    let mut watched = match Watched::new(args, watcher) {
        Ok(w) => w,
        Err(e) => {
            return usage(
                args,
                masker,
                e,
                "create the folder, or write the glob relative to the recipe's folder",
            )
        }
    };
    let mut filter = match watched.rewatch(&[], &watched.sources_of(&[])) {
        Ok(f) => f,
        Err(e) => return usage(args, masker, e, "check --paths and --ignore"),
    };
    let mut runs = Runs {
        args,
        printer: &printer,
        runtime,
        stop,
        masker,
        written: watched.written.clone(),
        tx,
        current: None,
        queued: false,
    };
    runs.launch();
    let mut burst = Burst::new(debounce);
    let mut stopping = false;
    while let Ok(event) = burst.next(&rx) {
        match event {
            Some(Event::Stop) => {
                stopping = true;
                if !runs.cancel() {
                    break;
                }
            }
            Some(Event::Changed(paths)) => burst.add(paths, &filter),
            None => {
                printer.watch(&changed_line(&burst.take()));
                runs.changed();
            }
            Some(Event::Finished(ended, took)) => {
                runs.current = None;
                match watched.rewatch(&ended.watch, &watched.sources_of(&ended.sources)) {
                    Ok(f) => filter = f,
                    Err(e) => printer.warn(&e),
                }
                printer.watch(&format!(
                    "last run: {} in {:.2}s at {}; watching {}; waiting for changes (Ctrl-C to stop)",
                    result_word(ended.code),
                    took.as_secs_f64(),
                    clock(),
                    watched.shown.join(", ")
                ));
                if stopping {
                    break;
                }
                runs.start_queued();
            }
        }
    }
    EXIT_INTERRUPTED
}

/// inotify through notify: each change (not a read: the run itself opens the recipe and its
/// files) arrives as `Event::Changed`. Nothing wakes up while nothing changes.
fn file_watcher(tx: mpsc::Sender<Event>) -> notify::Result<notify::RecommendedWatcher> {
    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if is_change(event.kind) && !event.paths.is_empty() {
                let _ = tx.send(Event::Changed(event.paths));
            }
        }
    })
}

/// Sends `Event::Stop` when `stop` is cancelled (Ctrl-C).
fn forward_stop(
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
    tx: mpsc::Sender<Event>,
) {
    let stop = stop.clone();
    runtime.spawn(async move {
        stop.cancelled().await;
        let _ = tx.send(Event::Stop);
    });
}

/// What is watched on disk: the recipe's folder and `--paths` always, and what the last run
/// showed it depends on.
struct Watched<'a> {
    args: &'a WatchArgs,
    watcher: notify::RecommendedWatcher,
    recipe: PathBuf,
    /// The folders of `--paths` outside the recipe's folder.
    path_dirs: Vec<PathBuf>,
    /// The project's galley.toml and galley.lock: a change reloads the libraries too.
    project: Vec<String>,
    /// The local paths the runs write, which never trigger a run.
    written: Arc<Mutex<Vec<String>>>,
    /// Galley's state folder, which never triggers a run either.
    state: PathBuf,
    /// The folders watched so far, each with whether recursively.
    on: BTreeSet<(PathBuf, bool)>,
    /// What is watched, as the `watching ...` line names it.
    shown: Vec<String>,
}

impl<'a> Watched<'a> {
    fn new(args: &'a WatchArgs, watcher: notify::RecommendedWatcher) -> Result<Self, String> {
        let recipe = std::path::absolute(&args.run.file).unwrap_or_else(|_| args.run.file.clone());
        let path_dirs = path_dirs(&recipe, &args.paths)?;
        let project = crate::libs::project_files(recipe.parent().unwrap_or(Path::new(".")));
        Ok(Watched {
            args,
            watcher,
            path_dirs,
            project,
            recipe,
            written: Arc::default(),
            state: normalize(&crate::primitives::deploy::journal::state_dir()),
            on: BTreeSet::new(),
            shown: Vec::new(),
        })
    }

    /// The sources to watch after a run that loaded `files` (the recipe alone when it did not
    /// get that far), with the project's files.
    fn sources_of(&self, files: &[String]) -> Vec<String> {
        let mut sources = files.to_vec();
        if sources.is_empty() {
            sources.push(self.recipe.to_string_lossy().into_owned());
        }
        sources.extend(self.project.iter().cloned());
        sources
    }

    /// Watches the sources and the paths a run declared; returns the rules for the changes.
    fn rewatch(&mut self, declared: &[String], sources: &[String]) -> Result<Filter, String> {
        let wanted = watches(&self.recipe, &self.path_dirs, declared, sources);
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
        for (path, recursive) in targets.difference(&self.on.clone()) {
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            notify::Watcher::watch(&mut self.watcher, path, mode)
                .map_err(|e| format!("cannot watch {}: {e}", path.display()))?;
            self.on.insert((path.clone(), *recursive));
        }
        self.shown = wanted
            .dirs
            .iter()
            .chain(wanted.files.iter())
            .map(|p| p.display().to_string())
            .collect();
        Filter::new(
            &wanted.dirs.iter().cloned().collect::<Vec<_>>(),
            &self.args.paths,
            &self.args.ignore,
            wanted.files.into_iter().collect(),
            self.written.clone(),
            self.state.clone(),
        )
    }
}

/// The changes of one burst: collected until it has been quiet for `debounce`.
struct Burst {
    debounce: Duration,
    paths: Vec<PathBuf>,
    /// When the burst ends unless another change comes; `None` while idle.
    quiet_until: Option<Instant>,
}

impl Burst {
    fn new(debounce: Duration) -> Self {
        Burst {
            debounce,
            paths: Vec::new(),
            quiet_until: None,
        }
    }

    /// The next event: idle, it blocks; collecting, `None` once the burst has been quiet for
    /// `debounce`. An error when every sender is gone.
    fn next(&self, rx: &mpsc::Receiver<Event>) -> Result<Option<Event>, ()> {
        match self.quiet_until {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => Ok(Some(event)),
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
            },
            None => rx.recv().map(Some).map_err(|_| ()),
        }
    }

    /// Adds the paths that `filter` wants; each one restarts the quiet period.
    fn add(&mut self, paths: Vec<PathBuf>, filter: &Filter) {
        let before = self.paths.len();
        self.paths
            .extend(paths.into_iter().filter(|p| filter.wants(p)));
        if self.paths.len() > before {
            self.quiet_until = Some(Instant::now() + self.debounce);
        }
    }

    /// The burst's paths, sorted and each once; the burst starts over.
    fn take(&mut self) -> Vec<PathBuf> {
        self.quiet_until = None;
        let mut paths = std::mem::take(&mut self.paths);
        paths.sort();
        paths.dedup();
        paths
    }
}

/// `changed: A, B, ... (+N more)`: the first five paths of a burst.
fn changed_line(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    let more = paths.len().saturating_sub(5);
    format!(
        "changed: {}{}",
        shown.join(", "),
        if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        }
    )
}

/// The runs of file mode: at most one at a time, and whether another is due when it ends.
struct Runs<'a> {
    args: &'a WatchArgs,
    printer: &'a Printer,
    runtime: &'a tokio::runtime::Runtime,
    stop: &'a CancellationToken,
    masker: &'a Masker,
    written: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<Event>,
    /// The running run's token.
    current: Option<CancellationToken>,
    queued: bool,
}

impl Runs<'_> {
    /// Starts a run.
    fn launch(&mut self) {
        let token = self.stop.child_token();
        let shared = Shared {
            written: Some(self.written.clone()),
            masker: self.masker.clone(),
            ..Shared::default()
        };
        start(
            self.args,
            self.printer,
            self.runtime.handle(),
            token.clone(),
            shared,
            self.tx.clone(),
        );
        self.current = Some(token);
    }

    /// Cancels the running run (Ctrl-C); false when none runs.
    fn cancel(&self) -> bool {
        self.current
            .as_ref()
            .map(tokio_util::sync::CancellationToken::cancel)
            .is_some()
    }

    /// A burst of changes ended: a run starts, or with one running, `--on-busy` decides.
    fn changed(&mut self) {
        match (&self.current, self.args.on_busy) {
            (None, _) => self.launch(),
            (Some(token), OnBusy::Restart) => {
                self.printer
                    .watch("cancelling the running run to start over");
                token.cancel();
                self.queued = true;
            }
            (Some(_), OnBusy::Queue) => {
                if !self.queued {
                    self.printer
                        .watch("a run is in progress: the next one starts when it ends");
                }
                self.queued = true;
            }
        }
    }

    /// The run ended: the queued one starts.
    fn start_queued(&mut self) {
        if self.queued {
            self.queued = false;
            self.launch();
        }
    }
}

fn watch_git(
    args: &WatchArgs,
    masker: &Masker,
    remote: &str,
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
) -> i32 {
    let printer = watch_printer(args, masker);
    let Some(interval) = parse_duration(&args.interval) else {
        return usage(
            args,
            masker,
            format!("--interval {:?} is not a duration", args.interval),
            "write it like 30s or 5m (at most 365 days)",
        );
    };
    let state = crate::primitives::deploy::journal::state_dir();
    let mut poller = match Poller::new(remote, &args.branch, &args.paths, state) {
        Ok(p) => p,
        Err(e) => return usage(args, masker, e, "check --git, --branch and --paths"),
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
                let shared = Shared {
                    extra,
                    masker: masker.clone(),
                    ..Shared::default()
                };
                start(
                    args,
                    &printer,
                    runtime.handle(),
                    stop.child_token(),
                    shared,
                    tx,
                );
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
                () = tokio::time::sleep(interval) => false,
                () = stop.cancelled() => true,
            }
        });
        if wait {
            break;
        }
    }
    EXIT_INTERRUPTED
}
