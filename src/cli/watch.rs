//! `galley watch`: run a recipe again whenever the files it depends on change, or whenever a
//! branch of a git remote gets a new commit. One run at a time: a change during a run either
//! cancels it cleanly and starts over (`--on-busy restart`) or queues the next run (`queue`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use rhai::{Dynamic, Map};
use tokio_util::sync::CancellationToken;

use super::run::{execute, interrupt_on_ctrl_c, Ended};
use super::{print_report, WatchArgs, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
use crate::exec::Masker;
use crate::primitives::options::parse_duration;
use crate::report::Report;
use crate::watch::filter::Filter;
use crate::watch::git::Poller;

/// What the loop hears about.
enum Event {
    Changed(Vec<PathBuf>),
    Finished(Ended, Duration),
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
        &Report::plain("galley::usage", message, help),
        args.run.output.output,
        &Masker::default(),
    );
    EXIT_USAGE
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
        let ended = execute(&run_args, &runtime, cancel, extra, Some(declared));
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

/// The folders to watch: the recipe's, the ones the recipe declared, and those of its modules.
fn roots(recipe: &Path, declared: &[String], sources: &[String]) -> BTreeSet<PathBuf> {
    let mut roots = BTreeSet::new();
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(dir) = absolute(recipe).parent() {
        roots.insert(dir.to_path_buf());
    }
    for path in declared
        .iter()
        .map(PathBuf::from)
        .chain(sources.iter().map(PathBuf::from))
    {
        let path = absolute(&path);
        // Editors save by writing a new file and renaming it: watch the folder, not the file.
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or(path)
        };
        if !roots.iter().any(|r| dir.starts_with(r)) {
            roots.insert(dir);
        }
    }
    roots
}

fn watch_files(
    args: &WatchArgs,
    debounce: Duration,
    runtime: &tokio::runtime::Runtime,
    stop: &CancellationToken,
) -> i32 {
    let (tx, rx) = mpsc::channel::<Event>();
    let changes = tx.clone();
    let mut debouncer = match new_debouncer(debounce, None, move |result: DebounceEventResult| {
        if let Ok(events) = result {
            // Reads (the run itself opens the recipe and its files) are not changes.
            let paths: Vec<PathBuf> = events
                .into_iter()
                .filter(|e| is_change(&e.event.kind))
                .flat_map(|e| e.event.paths.clone())
                .collect();
            if !paths.is_empty() {
                let _ = changes.send(Event::Changed(paths));
            }
        }
    }) {
        Ok(d) => d,
        Err(e) => {
            return usage(
                args,
                format!("cannot watch files: {e}"),
                "inotify limits? see `sysctl fs.inotify`",
            )
        }
    };
    let recipe = std::path::absolute(&args.run.file).unwrap_or_else(|_| args.run.file.clone());
    let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut sources: Vec<String> = vec![recipe.to_string_lossy().into_owned()];
    let mut declared: Vec<String> = Vec::new();
    // Watches what the last run showed it depends on; rebuilds the rules.
    let mut rewatch = |declared: &[String],
                       sources: &[String],
                       watched: &mut BTreeSet<PathBuf>|
     -> Result<Filter, String> {
        let wanted = roots(&recipe, declared, sources);
        for root in wanted.difference(&watched.clone()) {
            debouncer
                .watch(root, RecursiveMode::Recursive)
                .map_err(|e| format!("cannot watch {}: {e}", root.display()))?;
            watched.insert(root.clone());
        }
        let always = sources.iter().map(PathBuf::from).collect();
        Filter::new(
            &watched.iter().cloned().collect::<Vec<_>>(),
            &args.paths,
            &args.ignore,
            always,
        )
    };
    let mut filter = match rewatch(&declared, &sources, &mut watched) {
        Ok(f) => f,
        Err(e) => return usage(args, e, "check --paths and --ignore"),
    };

    let mut current: Option<CancellationToken> = None;
    let mut pending: Vec<PathBuf> = Vec::new();
    let mut queued = false;
    let launch = |current: &mut Option<CancellationToken>| {
        let token = stop.child_token();
        start(
            args,
            runtime.handle(),
            token.clone(),
            Map::new(),
            tx.clone(),
        );
        *current = Some(token);
    };
    launch(&mut current);
    loop {
        let event = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(event) => Some(event),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if stop.is_cancelled() && current.is_none() {
            break;
        }
        match event {
            None => {}
            Some(Event::Changed(paths)) => {
                let mut relevant: Vec<PathBuf> =
                    paths.into_iter().filter(|p| filter.wants(p)).collect();
                relevant.sort();
                relevant.dedup();
                if relevant.is_empty() {
                    continue;
                }
                let shown: Vec<String> = relevant
                    .iter()
                    .take(5)
                    .map(|p| p.display().to_string())
                    .collect();
                let more = relevant.len().saturating_sub(5);
                println!(
                    "[watch] changed: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                );
                pending.extend(relevant);
                match (&current, args.on_busy) {
                    (None, _) => {
                        pending.clear();
                        launch(&mut current);
                    }
                    (Some(token), OnBusy::Restart) => {
                        println!("[watch] cancelling the running run to start over");
                        token.cancel();
                        queued = true;
                    }
                    (Some(_), OnBusy::Queue) => {
                        if !queued {
                            println!(
                                "[watch] a run is in progress: the next one starts when it ends"
                            );
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
                declared = ended.watch.clone();
                match rewatch(&declared, &sources, &mut watched) {
                    Ok(f) => filter = f,
                    Err(e) => eprintln!("warning: {e}"),
                }
                println!(
                    "[watch] last run: {} in {:.2}s at {}; watching {}; waiting for changes (Ctrl-C to stop)",
                    result_word(ended.code),
                    took.as_secs_f64(),
                    clock(),
                    watched
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if stop.is_cancelled() {
                    break;
                }
                if queued {
                    queued = false;
                    pending.clear();
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
    let interval = match parse_duration(&args.interval) {
        Some(d) => d,
        None => {
            return usage(
                args,
                format!("--interval {:?} is not a duration", args.interval),
                "write it like 30s or 5m",
            )
        }
    };
    let state = crate::primitives::deploy::journal::state_dir();
    let mut poller = match Poller::new(remote, &args.branch, &args.paths, state) {
        Ok(p) => p,
        Err(e) => return usage(args, e, "check --git, --branch and --paths"),
    };
    println!(
        "[watch] polling {remote} every {}s for new commits on `{}`{}",
        interval.as_secs_f64(),
        args.branch,
        if args.paths.is_empty() {
            String::new()
        } else {
            format!(" that change {}", args.paths.join(", "))
        }
    );
    let mut first = true;
    while !stop.is_cancelled() {
        match poller.poll(first) {
            Err(e) => eprintln!("warning: [watch] {e}"),
            Ok(None) => {}
            Ok(Some(push)) => {
                println!(
                    "[watch] {} is now {} ({} path{} changed): deploying",
                    push.branch,
                    &push.sha[..push.sha.len().min(12)],
                    push.changed.len(),
                    if push.changed.len() == 1 { "" } else { "s" }
                );
                let mut extra = Map::new();
                extra.insert("branch".into(), push.branch.clone().into());
                extra.insert("sha".into(), push.sha.clone().into());
                extra.insert(
                    "changed".into(),
                    Dynamic::from_array(push.changed.iter().cloned().map(Dynamic::from).collect()),
                );
                let (tx, rx) = mpsc::channel();
                start(args, runtime.handle(), stop.child_token(), extra, tx);
                if let Ok(Event::Finished(ended, took)) = rx.recv() {
                    let word = if ended.code == EXIT_OK {
                        "ok"
                    } else {
                        "failed"
                    };
                    // Recorded either way: a failed commit waits for a newer one, not a retry.
                    if let Err(e) = poller.record(&push.branch, &push.sha, word) {
                        eprintln!("warning: cannot save the watcher's state: {e}");
                    }
                    println!(
                        "[watch] deploy of {} {}: {} in {:.2}s at {}",
                        push.branch,
                        &push.sha[..push.sha.len().min(12)],
                        result_word(ended.code),
                        took.as_secs_f64(),
                        clock()
                    );
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
