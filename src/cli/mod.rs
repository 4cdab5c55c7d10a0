//! The command line: `run`, `check`, `list`. Exit codes: 0 ok, 1 the recipe failed, 2 usage or
//! parse error, 130 interrupted.

mod check;
mod completions;
mod defs;
mod disconnect;
mod docs;
mod history;
mod init;
mod list;
mod lock;
mod man;
mod run;
mod unlock;
mod watch;

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::editors::templates::{self, TEMPLATES};
use crate::error::{Code, Exit};
use crate::exec::{Masker, OutputMode};
use crate::report::Report;

/// Exit code: the recipe ran and succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: the recipe failed.
pub const EXIT_FAILED: i32 = Exit::Failed.code();
/// Exit code: bad command line, unreadable recipe or syntax error.
pub const EXIT_USAGE: i32 = Exit::Usage.code();
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = Exit::Interrupted.code();

#[derive(Parser)]
#[command(
    name = "galley",
    version,
    about = "Run deploy recipes written in Rhai: git, ssh, docker, nginx, processes and health checks",
    long_about = "Galley runs deploy recipes: .rhai files that call built-in primitives for git, \
processes, files and health checks, the same way every time, with reports that point at the \
recipe line that failed.",
    after_help = "Examples:\n  galley run recipes/demo.rhai                 run a recipe's top level\n  \
galley run deploy.rhai deploy --set branch=main   then call its `deploy` task\n  \
galley run deploy.rhai --dry-run             print every action, change nothing\n  \
galley run deploy.rhai --dry-run --diff      and what each file would become\n  \
galley check deploy.rhai                     find mistakes without running anything\n  \
galley list deploy.rhai                      show the recipe's tasks\n  \
galley init --template rolling               write a starter recipe\n  \
galley disconnect                            close kept-open SSH connections\n  \
galley lock                                  pin the libraries of galley.toml in galley.lock\n\n\
Exit codes: 0 ok, 1 the recipe failed, 2 usage or parse error, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a recipe (its top level, then TASK if given).
    #[command(after_help = "Examples:\n  galley run recipes/start.rhai\n  \
galley run deploy.rhai deploy --set branch=release/1.2 --secrets .secrets\n  \
galley run deploy.rhai --dry-run --output plain\n\n\
`--set key=value` values are strings in the map `params` (visible in every function).\n\
Exit codes: 0 ok, 1 the recipe failed, 2 usage or parse error, 130 interrupted.")]
    Run(RunArgs),
    /// Check recipes without running them: syntax, imports, unknown functions and variables.
    #[command(after_help = "Examples:\n  galley check recipes/*.rhai\n  \
galley check deploy.rhai --format gnu     file:line:col: severity: message, for editors and CI\n\n\
Finds syntax errors, imports that do not load, calls to unknown functions, variables used where \
none is defined (a top-level `let` read inside a `fn`), and (warnings) recipe functions that \
hide a built-in one. Nothing runs: imported modules are loaded for their functions only.\n\n\
Exit codes: 0 no errors (warnings allowed), 2 an error was found or bad command line.")]
    Check {
        /// Recipe files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How to print the problems: human (reports, on stderr), gnu (one
        /// `file:line:col: severity: message` line each) or json (one object each), on stdout.
        #[arg(long, value_enum, default_value = "human")]
        format: check::Format,
        #[command(flatten)]
        locked: LockedArg,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Print the recipe API: every function Galley adds to Rhai and every stdlib module, with
    /// parameters, return type, doc, example and options.
    #[command(
        after_help = "Examples:\n  galley docs                     every function\n  \
galley docs health              only names containing `health`\n  \
galley docs --format markdown   the reference as docs/API.md has it\n\n\
A filter that matches nothing exits with 2."
    )]
    Docs {
        /// Show only functions whose name (`health::http`, `Host.run`, `rolling::deploy`) contains this text.
        filter: Option<String>,
        /// text, markdown (docs/API.md) or json (the catalog, for tools).
        #[arg(long, value_enum, default_value = "text")]
        format: docs::Format,
    },
    /// List a recipe's tasks (its documented top-level functions) in source order.
    #[command(
        after_help = "Example:\n  galley list deploy.rhai\n\nA task is a top-level `fn` with a \
`///` doc comment, shown beside it; helpers without one, private functions and closures are not \
listed. Run one with `galley run FILE TASK`."
    )]
    List {
        /// The recipe file.
        file: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Close the SSH connections that earlier runs kept open for reuse.
    #[command(
        after_help = "Galley keeps each host's SSH master connection open for a while after a run (`persist`, 5 minutes by default) so that the next run does not pay for a new handshake. This closes them now, for example after changing a host's keys. They live in GALLEY_CONTROL_DIR, $XDG_RUNTIME_DIR/galley or /tmp/galley-UID."
    )]
    Disconnect,
    /// Show the deploy journal: who deployed what, where, when, and how it ended.
    #[command(
        after_help = "Examples:\n  galley history\n  galley history web --limit 5\n  \
galley history web --json | jq .\n\nThe journal is $GALLEY_STATE_DIR/journal.jsonl (default \
~/.local/state/galley/journal.jsonl), one JSON object per deploy."
    )]
    History {
        /// Only this app.
        app: Option<String>,
        /// Show at most N deploys (the newest).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Redeploy the previous good version of an app (or the one with --to ID).
    #[command(
        after_help = "Runs the recipe and task of that deploy again with the same --set \
values, pinned to its version: --set sha=..., image=... or release=... (whichever it recorded) \
and rollback_to=ID. Recipes deploy `params.sha` (or image, release) when it is given. The \
rollback is journaled like any deploy."
    )]
    Rollback {
        /// The app to roll back.
        app: String,
        /// The journal id of the deploy to go back to (see `galley history`).
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Run a recipe again whenever its files change, or when a git branch gets a new commit.
    #[command(after_help = "Examples:\n  galley watch deploy.rhai deploy\n  \
galley watch deploy.rhai --paths 'src/**' --ignore '**/*.tmp' --debounce 300ms --on-busy queue\n  \
galley watch deploy.rhai deploy --git git@example.com:team/app.git --branch 'release/*' \\\n      \
--paths 'backend/server/**' --interval 30s\n\n\
Files: the recipe's folder, the files it declares with watch([...]) and its modules are watched; \
.gitignore, .ignore and .galleyignore are honoured. A burst of changes makes one run. A change to \
the recipe or a module reloads it; a syntax error is reported and the watcher waits for the fix.\n\n\
Git: the remote is polled with ls-remote; a new commit on a matching branch that changes a \
matching path runs the recipe with params.branch, params.sha and params.changed (an array). \
Deploys run one at a time; a failed one is not retried until a newer commit arrives; what was \
deployed is kept in $GALLEY_STATE_DIR/watch/ across restarts.")]
    Watch(WatchArgs),
    /// Remove a deploy lock that a killed deploy left, on this machine or on an ssh host.
    #[command(after_help = "Examples:\n  galley unlock web\n  \
galley unlock web --host deploy@web1.example.com --identity ~/.ssh/deploy\n\n\
A deploy that was killed leaves its lock behind, and the next deploy says so (\"stale lock\"). \
Locks live in Galley's state folder on each host ($XDG_STATE_HOME/galley, or the `state_dir` \
given to ssh::connect: pass the same with --state-dir).")]
    Unlock(UnlockArgs),
    /// Pin the libraries of galley.toml that galley.lock lacks to a commit and a hash.
    #[command(after_help = LIBRARIES_HELP)]
    Lock {
        #[command(flatten)]
        locked: LockedArg,
        #[command(flatten)]
        offline: OfflineArg,
    },
    /// Lock what each library's rev names now (or only NAME's); lists the commits in between.
    #[command(after_help = LIBRARIES_HELP)]
    Update {
        /// Only this library.
        name: Option<String>,
        #[command(flatten)]
        offline: OfflineArg,
    },
    /// Fill the library cache from galley.lock (for CI and offline runs); refuses moved tags.
    #[command(after_help = LIBRARIES_HELP)]
    Fetch {
        #[command(flatten)]
        locked: LockedArg,
        #[command(flatten)]
        offline: OfflineArg,
    },
    /// Write a starter recipe (deploy.rhai, .galleyignore) or a library skeleton.
    #[command(
        after_help = "Examples:\n  galley init                       the start.sh replacement\n  \
galley init --template rolling    a rolling update behind nginx\n  \
galley init --lib team-recipes    a shared recipe library (lib.rhai, README.md, test.rhai)\n\n\
Existing files are never overwritten: galley init refuses and writes nothing. \
docs/libraries.md says how to version and use a library."
    )]
    Init {
        /// The starter recipe to write.
        #[arg(long, value_name = "NAME", default_value = "start", value_parser = template_parser())]
        template: &'static templates::Template,
        /// Write a shared recipe library instead of a recipe.
        #[arg(long, conflicts_with = "template")]
        lib: bool,
        /// The folder to write into (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Write Rhai definition files of the recipe API, for editors and Rhai tooling.
    #[command(after_help = "Examples:\n  galley defs --dir .rhai/definitions\n  \
galley defs --editors editors\n\n--editors regenerates the generated files of editors/: the \
definitions, the VS Code grammar and snippets, the vim syntax. See docs/editors.md.")]
    Defs {
        /// Write the .d.rhai files (Galley's functions and modules, the stdlib's modules) here.
        #[arg(long, value_name = "DIR", required_unless_present = "editors")]
        dir: Option<PathBuf>,
        /// Regenerate every generated file of this editors/ folder.
        #[arg(long, value_name = "DIR")]
        editors: Option<PathBuf>,
    },
    /// Print the shell completion script for bash, zsh, fish or powershell.
    #[command(
        after_help = "Example:\n  galley completions bash > ~/.local/share/bash-completion/completions/galley\n\nSee the README for each shell."
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into --dir.
    #[command(
        after_help = "Examples:\n  galley man | man -l -\n  galley man --dir ~/.local/share/man/man1"
    )]
    Man {
        /// Write galley.1 and one page per command (galley-run.1, ...) into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `--template NAME`: one of the templates' names (which completions offer too).
fn template_parser() -> impl TypedValueParser<Value = &'static templates::Template> {
    PossibleValuesParser::new(TEMPLATES.iter().map(|t| t.name))
        .try_map(|name| templates::get(&name).ok_or("unknown template"))
}

const LIBRARIES_HELP: &str =
    "Examples:\n  galley lock              pin new libraries of galley.toml\n  \
galley update team       move `team` to what its rev names now, listing the commits\n  \
galley fetch --locked    in CI: fill the cache, fail if galley.toml and galley.lock disagree\n\n\
`galley run`, `check` and `watch` never use the network: they read galley.lock and the cache \
(${GALLEY_CACHE:-$XDG_CACHE_HOME/galley}, else ~/.cache/galley) and verify each library's hash. \
git runs with your ssh keys, ~/.ssh/config and credential helpers. See docs/libraries.md.";

#[derive(Args, Clone)]
struct LockedArg {
    /// Fail when galley.toml and galley.lock disagree instead of changing the lock (the default when CI=true).
    #[arg(long)]
    locked: bool,
}

#[derive(Args, Clone)]
struct OfflineArg {
    /// Use only what the cache's mirrors already have; never reach a repository.
    #[arg(long)]
    offline: bool,
}

#[derive(Args)]
struct UnlockArgs {
    /// The app whose lock to remove.
    app: String,
    /// The ssh host (user@host:port) whose lock to remove, instead of this machine's.
    #[arg(long, value_name = "DEST")]
    host: Option<String>,
    /// The private key for --host.
    #[arg(long, value_name = "FILE", requires = "host")]
    identity: Option<String>,
    /// The `known_hosts` file for --host.
    #[arg(long, value_name = "FILE", requires = "host")]
    known_hosts_file: Option<String>,
    /// Galley's state folder on --host, when the deploys there gave `ssh::connect` a `state_dir`.
    #[arg(long, value_name = "DIR", requires = "host")]
    state_dir: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Clone)]
struct OutputArgs {
    /// How to print: fancy (colors on a terminal), plain, json (one object per line, see
    /// docs/json.md) or github (workflow commands). Default: github when `GITHUB_ACTIONS=true`,
    /// else fancy.
    #[arg(long, value_enum, global = true)]
    output: Option<OutputMode>,
}

impl OutputArgs {
    /// The mode asked for, or the one that fits where Galley runs.
    fn mode(&self) -> OutputMode {
        OutputMode::resolve(self.output)
    }
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The recipe file.
    file: PathBuf,
    /// A task (top-level function) to call after the top level has run.
    task: Option<String>,
    /// Set params.KEY to VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print every action that would be taken; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// A .env-style file of secrets for `secret(NAME)` (the environment wins).
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// Stop a recipe after this many script operations (endless-loop guard).
    #[arg(long, value_name = "N", default_value_t = crate::engine::DEFAULT_MAX_OPERATIONS)]
    max_operations: u64,
    /// How many hosts `parallel` and `rolling` work on at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    max_parallel: u64,
    /// Take deploy locks even if another deploy holds them (after a crash left one behind).
    #[arg(long)]
    force_unlock: bool,
    /// With --dry-run: show a unified diff of each file, upstream and container that would change.
    #[arg(long, requires = "dry_run")]
    diff: bool,
    /// Post a summary of each deploy to this webhook (Slack-compatible; repeatable, or
    /// `GALLEY_NOTIFY` with URLs separated by commas).
    #[arg(long, value_name = "URL", env = "GALLEY_NOTIFY", value_delimiter = ',')]
    notify: Vec<String>,
    #[command(flatten)]
    locked: LockedArg,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct WatchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Only changes to paths matching these globs trigger a run (with --git: paths in the commit).
    #[arg(long = "paths", value_name = "GLOB")]
    paths: Vec<String>,
    /// Changes to paths matching these globs never trigger a run.
    #[arg(long = "ignore", value_name = "GLOB")]
    ignore: Vec<String>,
    /// Collect a burst of changes for this long into one run.
    #[arg(long, default_value = "200ms")]
    debounce: String,
    /// What a change during a run does.
    #[arg(long, value_enum, default_value = "restart")]
    on_busy: watch::OnBusy,
    /// Clear the screen before each run.
    #[arg(long)]
    clear: bool,
    /// Poll this git remote instead of watching files.
    #[arg(long, value_name = "REMOTE")]
    git: Option<String>,
    /// With --git: the branches to deploy (a glob).
    #[arg(long, default_value = "main")]
    branch: String,
    /// With --git: how often to poll.
    #[arg(long, default_value = "30s")]
    interval: String,
}

/// A dry-run context and its runtime, for commands that only inspect recipes (check, list, docs).
fn inspecting(mode: OutputMode) -> (std::sync::Arc<crate::exec::Ctx>, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ctx = std::sync::Arc::new(crate::exec::Ctx {
        printer: crate::exec::Printer::new(mode, Masker::default()),
        dry_run: true,
        cancel: tokio_util::sync::CancellationToken::new(),
        max_parallel: 1,
        run: crate::exec::RunInfo::default(),
        watch: Default::default(),
        written: Default::default(),
        runtime: runtime.handle().clone(),
    });
    (ctx, runtime)
}

/// Prints a report on stderr.
fn print_report(report: &Report, mode: OutputMode, masker: &Masker) {
    eprintln!("{}", report.render(mode, masker));
}

/// Parses the command line and runs it; returns the exit code.
pub fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let report = Report::plain(
            Code::Bug,
            format!("internal error: {info}"),
            "this is a bug in Galley, not in your recipe; please report it with the recipe that triggered it",
        );
        eprintln!("{}", report.render(OutputMode::Plain, &Masker::default()));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Commands::Run(args) => run::run(args),
        Commands::Check {
            files,
            format,
            locked,
            output,
        } => check::check(&files, locked.locked, output.mode(), format),
        Commands::List { file, output } => list::list(&file, output.mode()),
        Commands::Docs { filter, format } => docs::docs(filter.as_deref(), format),
        Commands::Disconnect => disconnect::disconnect(),
        Commands::History { app, limit, json } => history::history(app.as_deref(), limit, json),
        Commands::Rollback { app, to, output } => {
            history::rollback(&app, to.as_deref(), output.mode())
        }
        Commands::Unlock(args) => unlock::unlock(args),
        Commands::Watch(args) => watch::watch(args),
        Commands::Lock { locked, offline } => lock::lock(lock::Mode {
            locked: crate::libs::locked_mode(locked.locked),
            offline: offline.offline,
        }),
        Commands::Update { name, offline } => lock::update(name.as_deref(), offline.offline),
        Commands::Fetch { locked, offline } => lock::fetch(lock::Mode {
            locked: crate::libs::locked_mode(locked.locked),
            offline: offline.offline,
        }),
        Commands::Init { lib: true, dir, .. } => init::init(&dir, init::Kind::Library),
        Commands::Init { template, dir, .. } => init::init(&dir, init::Kind::Recipe(template)),
        Commands::Defs { dir, editors } => defs::defs(dir.as_deref(), editors.as_deref()),
        Commands::Completions { shell } => completions::completions(shell),
        Commands::Man { dir } => man::man(dir.as_deref()),
    }
}
